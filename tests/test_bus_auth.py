"""Who is let onto a CURVE bus, decided at each handshake: a key counts from the moment it is
allowed, a revoked key's connection is closed, and the app's bus monitor says when the bus
refuses its key and dials again until it is let in. In-process publisher and authenticator, real
sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import zmq
import zmq.asyncio
import zmq.auth
from zmq.utils.monitor import recv_monitor_message

from backend.bus.guard import REFRESH_SECONDS, BusGuard
from backend.bus.messages import LogRecord
from backend.bus.publisher import ZmqPublisher
from backend.feed import LOG_TOPIC
from desktop.link.bus_monitor import NO_HANDSHAKE, REFUSED, BusMonitor, CurveKeys

#: Bounds on the waits below; none is a pause: each ends as soon as what it waits for happens.
WITHIN = 10.0
#: How long a subscriber that must receive nothing is watched.
SILENT_MS = 500


@dataclass
class Bus:
    """A CURVE bus and its guard, over a folder of allowed keys of its own."""

    publisher: ZmqPublisher
    guard: BusGuard
    server_key: bytes
    keys: Path  # where the test makes its subscribers' key pairs

    @property
    def endpoint(self) -> str:
        return self.publisher.endpoint

    def pair(self, name: str) -> tuple[bytes, bytes]:
        """A new key pair for ``name``, not allowed."""
        zmq.auth.create_certificates(self.keys, name)
        return zmq.auth.load_certificate(self.keys / f"{name}.key_secret")

    def allow(self, name: str) -> None:
        """Allow ``name``'s key as ``--allow-bus-client`` does: by copying its public key file."""
        shutil.copyfile(self.keys / f"{name}.key", self.guard.directory / f"{name}.key")

    def allowed_pair(self, name: str) -> tuple[bytes, bytes]:
        keys = self.pair(name)
        self.allow(name)
        return keys

    def publish(self) -> None:
        """A log record, as the app's bus monitor takes one."""
        probe = LogRecord(
            time=time.time(),
            level="INFO",
            logger="probe",
            connection=None,
            sequence=None,
            message="probe",
        )
        self.publisher.publish(LOG_TOPIC, probe)


@pytest.fixture(scope="module")
def bus(tmp_path_factory):
    """One bus for the module: a process has one ZAP handler, whose address stays taken a while
    after it stops."""
    guard = BusGuard(zmq.Context.instance(), tmp_path_factory.mktemp("bus") / "clients")
    guard.start()
    server = zmq.curve_keypair()
    publisher = ZmqPublisher(port=0, curve_keys=server)
    yield Bus(publisher, guard, server[0], tmp_path_factory.mktemp("client-keys"))
    publisher.close()
    guard.stop()


def subscriber(bus: Bus, keys: tuple[bytes, bytes]) -> tuple[zmq.asyncio.Socket, ...]:
    """A CURVE SUB to everything, and the monitor of its handshakes (attached before it dials)."""
    sub = zmq.asyncio.Context.instance().socket(zmq.SUB)
    sub.linger = 0
    sub.curve_publickey, sub.curve_secretkey = keys
    sub.curve_serverkey = bus.server_key
    sub.subscribe(b"")
    monitor = sub.get_monitor_socket(
        zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    )
    sub.connect(bus.endpoint)
    return sub, monitor


async def receives(bus: Bus, sub: zmq.asyncio.Socket) -> None:
    """Publish until ``sub`` receives one of the messages; fail after :data:`WITHIN`."""
    async with asyncio.timeout(WITHIN):
        while not await sub.poll(20):
            bus.publish()
    await sub.recv_multipart()


async def handshake(bus: Bus, monitor: zmq.asyncio.Socket) -> zmq.Event:
    """The next handshake's outcome, the bus publishing meanwhile as a backend's does (the
    publishing thread finishes closing the connections the bus closes)."""
    async with asyncio.timeout(WITHIN):
        while not await monitor.poll(20):
            bus.publish()
        return (await recv_monitor_message(monitor))["event"]


async def eventually(bus: Bus, predicate: Callable[[], object]) -> None:
    """Publish every 20 ms until ``predicate()`` holds; fail after :data:`WITHIN`."""
    async with asyncio.timeout(WITHIN):
        while not predicate():
            bus.publish()
            await asyncio.sleep(0.02)


async def test_a_key_allowed_just_before_connecting_is_let_in(bus):
    sub, monitor = subscriber(bus, bus.allowed_pair("laptop"))  # dialled as soon as allowed
    try:
        assert await handshake(bus, monitor) == zmq.EVENT_HANDSHAKE_SUCCEEDED
        await receives(bus, sub)
    finally:
        monitor.close()
        sub.close()


async def test_a_revoked_key_is_cut_off_while_an_allowed_one_keeps_receiving(bus):
    kept, kept_monitor = subscriber(bus, bus.allowed_pair("kept"))
    revoked, revoked_monitor = subscriber(bus, bus.allowed_pair("revoked"))
    watch = bus.guard.watch(bus.publisher.reconnect_subscribers)
    watching = asyncio.get_running_loop().create_task(watch)
    try:
        await receives(bus, kept)
        await receives(bus, revoked)
        assert await handshake(bus, revoked_monitor) == zmq.EVENT_HANDSHAKE_SUCCEEDED
        (bus.guard.directory / "revoked.key").unlink()
        revoking = time.monotonic()
        assert await handshake(bus, revoked_monitor) == zmq.EVENT_HANDSHAKE_FAILED_AUTH
        assert time.monotonic() - revoking < REFRESH_SECONDS + 1.0
        while await revoked.poll(0):  # what came before the cut
            await revoked.recv_multipart()
        await receives(bus, kept)
        for _ in range(10):
            bus.publish()
        assert not await revoked.poll(SILENT_MS)
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
        for socket in (kept_monitor, kept, revoked_monitor, revoked):
            socket.close()


@dataclass
class App:
    """The app's bus monitor, what it reported (why it is refused, or ``""``) and delivered."""

    monitor: BusMonitor
    refusals: list[str]
    delivered: list[str]


@pytest.fixture
async def app():
    refusals: list[str] = []
    delivered: list[str] = []
    monitor = BusMonitor(lambda topic, _: delivered.append(topic), refusals.append)
    yield App(monitor, refusals, delivered)
    monitor.stop()


async def test_the_app_says_the_bus_refused_its_key_however_fast_the_refusal_came(
    bus, app, monkeypatch
):
    """On a loaded machine the app may not run again until its handshake is over: the refusal
    must not go unseen for that."""
    on_the_bus = bus.publisher._socket.get_monitor_socket()
    connect = zmq.asyncio.Socket.connect

    def connect_then_stall(socket, endpoint):
        """Dial, then stall until the bus has refused the key and the app has hung up."""
        connect(socket, endpoint)
        if endpoint != bus.endpoint:  # the monitor's own socket
            return
        events = []
        while zmq.EVENT_DISCONNECTED not in events:
            assert on_the_bus.poll(WITHIN * 1000), events
            events.append(recv_monitor_message(on_the_bus)["event"])
        assert zmq.EVENT_HANDSHAKE_FAILED_AUTH in events

    monkeypatch.setattr(zmq.asyncio.Socket, "connect", connect_then_stall)
    try:
        app.monitor.start(bus.endpoint, CurveKeys(bus.server_key, *bus.pair("stranger")))
    finally:
        monkeypatch.undo()
        bus.publisher._socket.disable_monitor()
        on_the_bus.close()
    await eventually(bus, lambda: app.refusals)
    assert app.refusals == [REFUSED] and app.monitor.refusal == REFUSED
    assert not app.monitor.delivering


async def test_a_key_allowed_after_the_bus_refused_it_lets_the_app_in(bus, app):
    app.monitor.start(bus.endpoint, CurveKeys(bus.server_key, *bus.pair("late")))
    await eventually(bus, lambda: app.refusals)
    assert app.refusals == [REFUSED]
    bus.allow("late")
    await eventually(bus, lambda: app.delivered)
    assert app.refusals == [REFUSED, ""] and app.monitor.refusal == ""


async def test_a_wrong_server_key_is_told_apart_from_a_refusal(bus, app):
    wrong_server, _ = zmq.curve_keypair()
    app.monitor.start(bus.endpoint, CurveKeys(wrong_server, *bus.allowed_pair("desk")))
    await eventually(bus, lambda: app.refusals)
    assert app.refusals == [NO_HANDSHAKE]
