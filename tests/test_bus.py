"""The bus publisher: thread-safe publishing, port fallback, the process-wide instance."""

import json
import threading

import pytest
import zmq

from backend.brokers import BROKERS
from backend.brokers.adapter import BrokerAdapter, pooled_creation, pooled_publisher
from backend.bus.publisher import SharedZmqPublisher, ZmqPublisher
from backend.feed import LTP, tick_topic
from backend.simulator import SimulatorCredentials

THREADS, MESSAGES = 8, 2_000


@pytest.fixture
def publisher():
    pub = ZmqPublisher(port=0)
    yield pub
    pub.close()


def subscriber(endpoint: str, prefix: str = "") -> zmq.Socket:
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt_string(zmq.SUBSCRIBE, prefix)
    sub.connect(endpoint)
    return sub


def wait_until_joined(pub: ZmqPublisher, sub: zmq.Socket) -> None:
    """Publish probes until the subscriber sees one: a SUB joins asynchronously."""
    sub.setsockopt_string(zmq.SUBSCRIBE, "PROBE")
    poller = zmq.Poller()
    poller.register(sub, zmq.POLLIN)
    for _ in range(200):
        pub.publish("PROBE", {})
        if poller.poll(25):
            break
    else:
        raise AssertionError("subscriber never joined")
    sub.setsockopt_string(zmq.UNSUBSCRIBE, "PROBE")
    while poller.poll(50):
        sub.recv_multipart()


def test_many_threads_publish_and_every_message_arrives_intact(publisher):
    sub = subscriber(publisher.endpoint, "NSE_")
    wait_until_joined(publisher, sub)

    def publish(thread: int) -> None:
        for n in range(MESSAGES):
            publisher.publish(tick_topic("NSE", f"T{thread}", LTP), {"thread": thread, "n": n})

    threads = [threading.Thread(target=publish, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    received: dict[int, list[int]] = {t: [] for t in range(THREADS)}
    sub.setsockopt(zmq.RCVTIMEO, 5_000)
    for _ in range(THREADS * MESSAGES):
        topic, payload = sub.recv_multipart()
        data = json.loads(payload)
        assert topic == f"NSE_T{data['thread']}_LTP".encode()
        received[data["thread"]].append(data["n"])
    for t in threads:
        t.join()
    assert all(numbers == list(range(MESSAGES)) for numbers in received.values())
    sub.close()


def test_a_taken_port_moves_to_the_next_free_one(publisher):
    second = ZmqPublisher(port=publisher.port)
    try:
        assert second.port > publisher.port
        sub = subscriber(second.endpoint)
        wait_until_joined(second, sub)
        sub.close()
    finally:
        second.close()


def test_shared_publisher_is_one_per_process():
    first = SharedZmqPublisher.get(port=0)
    try:
        assert SharedZmqPublisher.get(port=0) is first
        assert SharedZmqPublisher.current() is first
    finally:
        first.close()
    assert SharedZmqPublisher.current() is None


def _unconnected(index: int) -> BrokerAdapter:
    broker = BROKERS["angel"]
    credentials = broker.simulator_credentials(SimulatorCredentials())
    return broker.adapter(index, "ws://127.0.0.1:9/smart-stream", credentials)


async def test_pooled_adapters_share_the_publisher_and_lone_ones_own_theirs(publisher):
    with pooled_creation(publisher):
        pooled = _unconnected(1)
        assert pooled_publisher() is publisher
    assert pooled_publisher() is None
    alone = _unconnected(2)
    assert pooled.publisher is publisher
    assert alone.publisher is not publisher and alone.publisher.endpoint
    await pooled.close()
    await alone.close()
    assert not publisher.closed and alone.publisher.closed
