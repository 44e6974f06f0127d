"""A broker that sends what no broker should: one bad tick, an endless message, a flood of garbage.

Each costs itself and never the connection (a bad tick is dropped and counted), memory stays
bounded, and repeated faults make a few log lines with counts. The brokers here are real servers
on 127.0.0.1 speaking as much SmartStream (or KiteTicker) as the adapter needs. The desktop's feed
socket bounds a message the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import picows
import pytest
from picows import WSMsgType
from proxy_client import eventually
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from backend.brokers import BROKERS
from backend.brokers.angel import protocol
from backend.brokers.angel.adapter import SmartStreamAdapter
from backend.brokers.errors import BrokerConnectionError
from backend.brokers.zerodha.adapter import KiteAdapter, KiteCredentials
from backend.feed import CONNECTED, HEALTH_TOPIC, QUOTE, RECONNECTING
from backend.instruments.master import Instrument
from backend.logs.faults import FaultLog
from backend.security.secret import Secret
from backend.simulator import SimulatorCredentials
from backend.wire.batch import send_batch
from backend.wire.broker_socket import MAX_FRAME_BYTES, BrokerSocket, open_websocket
from backend.wire.joiner import MessageJoiner, MessageTooBig
from desktop.link import feed_socket

SBIN = Instrument("3045", "SBIN", "State Bank of India", "NSE", "EQ", 1, 0.05)
INFY = Instrument("1594", "INFY", "Infosys", "NSE", "EQ", 1, 0.05)
WAIT = 20.0
#: Short enough for a test to see the counts, long enough that a flood fits in a few intervals.
INTERVAL = 2.0
SUMMARY = re.compile(r"^Connection 1: (.+): (\d+) more like it in the last")

Opened = Callable[[ServerConnection, int], Awaitable[None]]
Asked = Callable[[ServerConnection, str], Awaitable[None]]


def quote(token: str, ltp: int, *, buy: float = 5_000.0, sell: float = 6_000.0) -> bytes:
    """A Quote packet of NSE ``token`` at ``ltp`` paise with total buy and sell quantities."""
    packet = protocol.Packet(
        QUOTE, 1, token, 1, 1_764_060_000_000, ltp, 10, ltp, 1_000, buy, sell, ltp, ltp, ltp, ltp
    )
    return protocol.encode(packet)


@contextlib.asynccontextmanager
async def broker(
    on_open: Opened | None = None, on_request: Asked | None = None
) -> AsyncIterator[tuple[str, list[ServerConnection]]]:
    """A SmartStream broker: ``(URL, its connections so far)``.

    It answers each text ``ping`` with ``pong``; ``on_open(websocket, number)`` plays on each
    connection as it opens (the first is number 1), ``on_request(websocket, text)`` on each
    other message.
    """
    connections: list[ServerConnection] = []

    async def handler(websocket: ServerConnection) -> None:
        connections.append(websocket)
        with contextlib.suppress(ConnectionClosed):
            if on_open is not None:
                await on_open(websocket, len(connections))
            async for message in websocket:
                if message == "ping":
                    await websocket.send("pong")
                elif on_request is not None:
                    await on_request(websocket, message)

    async with serve(handler, "127.0.0.1", 0) as server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/smart-stream", connections


def angel_adapter(url: str, publisher) -> SmartStreamAdapter:
    credentials = BROKERS["angel"].simulator_credentials(SimulatorCredentials())
    return SmartStreamAdapter(
        1,
        url,
        credentials,
        publisher=publisher,
        reconnect_first_delay=0.05,
        reconnect_max_delay=0.5,
    )


async def join(reader, publisher) -> None:
    """Publish probes until ``reader`` hears one: a SUB socket joins the bus asynchronously."""
    async with asyncio.timeout(WAIT):
        while True:
            publisher.publish("SYS.PROBE", {})
            with contextlib.suppress(TimeoutError):
                await reader.until(lambda topic, _: topic == "SYS.PROBE", timeout=0.1)
                return


def fault_lines(caplog, logger: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger and r.levelno == logging.WARNING]


def counted(records: list[logging.LogRecord]) -> dict[str, int]:
    """Faults of each kind the records tell of: one for each first line, and each summary's."""
    counts: dict[str, int] = {}
    for record in records:
        text = record.getMessage()
        summary = SUMMARY.match(text)
        kind = summary[1] if summary else text.removeprefix("Connection 1: ").split(":")[0]
        counts[kind] = counts.get(kind, 0) + (int(summary[2]) if summary else 1)
    return counts


# -- one bad value -------------------------------------------------------------------------------


async def test_a_poison_tick_is_dropped_and_counted_and_the_connection_stays(
    make_pool, publisher, bus, caplog
):
    """A Quote packet whose total buy (then sell) quantity is NaN (infinite) between good ones."""
    requested: set[str] = set()

    async def on_request(websocket: ServerConnection, text: str) -> None:
        tokens = {t for _, t in protocol.parse_request(text).tokens}
        if requested | tokens == requested or requested | tokens != {SBIN.token, INFY.token}:
            return  # ticks once both are subscribed
        requested.update(tokens)
        poisoned = [quote(SBIN.token, 80_001)]
        poisoned += [quote(INFY.token, 150_000, buy=math.nan)]
        poisoned += [quote(SBIN.token, 80_002)]
        await send_batch(websocket, poisoned, text=False)
        after = [quote(INFY.token, 150_001, sell=math.inf)]
        after += [quote(INFY.token, 150_002), quote(SBIN.token, 80_003)]
        await send_batch(websocket, after, text=False)

    reader = bus()
    await join(reader, publisher)
    ltps: dict[str, list[float]] = {"NSE_SBIN_QUOTE": [], "NSE_INFY_QUOTE": []}
    states: list[str] = []

    def collect(topic: str, message: dict) -> bool:
        """Until the last tick, or the connection goes down."""
        if topic in ltps:
            ltps[topic].append(message["ltp"])
        elif topic == HEALTH_TOPIC and message["component"] == "connection":
            states.append(message["state"])
        last = ltps["NSE_SBIN_QUOTE"][-1:] == [800.03] and ltps["NSE_INFY_QUOTE"] != []
        return last or RECONNECTING in states

    async with broker(on_request=on_request) as (url, connections):
        pool = make_pool(None, url=url)
        outcomes = await pool.subscribe_many([("SBIN", "NSE"), ("INFY", "NSE")], QUOTE, "test")
        assert all(o.ok for o in outcomes)
        await reader.until(collect, WAIT)
        (stats,) = pool.get_stats().connections
        assert len(connections) == 1 and states == [CONNECTED]
    assert ltps == {"NSE_SBIN_QUOTE": [800.01, 800.02, 800.03], "NSE_INFY_QUOTE": [1500.02]}
    assert stats.ticks_dropped == 2 and stats.state == CONNECTED
    (dropped,) = [r for r in fault_lines(caplog, "feedpool.angel") if "dropped" in r.getMessage()]
    assert "NSE_INFY_QUOTE: ValueError" in dropped.getMessage() and dropped.connection == 1


# -- an endless message --------------------------------------------------------------------------


class Frame:
    """What :class:`MessageJoiner` reads of a picows frame."""

    def __init__(self, kind, payload: bytes, fin: bool) -> None:
        self.msg_type, self.payload_size, self.fin = kind, len(payload), fin
        self._payload = payload

    def get_payload_as_bytes(self) -> bytes:
        return self._payload


def test_a_message_joiner_holds_at_most_its_bound():
    joiner = MessageJoiner(10)
    assert joiner.take(Frame(WSMsgType.BINARY, b"12345", False)) is None
    assert joiner.take(Frame(WSMsgType.CONTINUATION, b"67890", False)) is None
    assert joiner.size == 10
    with pytest.raises(MessageTooBig):
        joiner.take(Frame(WSMsgType.CONTINUATION, b"!", False))
    assert joiner.size == 0
    assert joiner.take(Frame(WSMsgType.CONTINUATION, b"rest", True)) is None  # of the dropped one
    assert joiner.take(Frame(WSMsgType.TEXT, b"whole", False)) is None
    assert joiner.take(Frame(WSMsgType.CONTINUATION, b" one", True)) == b"whole one"
    assert not joiner.binary and joiner.size == 0


async def test_an_endless_fragmented_message_closes_the_connection_and_it_reconnects(
    publisher, caplog, monkeypatch
):
    """Continuation frames of 1 MB that never end, far past the bound: the joiner never holds
    more than the bound, the adapter closes with 1009 and opens a new connection."""
    peak = 0
    add = MessageJoiner._add

    def measured(joiner: MessageJoiner, frame) -> None:
        nonlocal peak
        add(joiner, frame)
        peak = max(peak, joiner.size)

    monkeypatch.setattr(MessageJoiner, "_add", measured)

    async def on_open(websocket: ServerConnection, number: int) -> None:
        async def endless() -> AsyncIterator[bytes]:
            for _ in range(16):
                yield bytes(1_000_000)
            await websocket.wait_closed()

        if number == 1:
            await websocket.send(endless())

    states: list[tuple[str, str]] = []
    async with broker(on_open=on_open) as (url, connections):
        adapter = angel_adapter(url, publisher)
        adapter.state_listeners.append(lambda _, state, reason: states.append((state, reason)))
        try:
            await adapter.connect()
            await eventually(lambda: len(connections) == 2 and adapter.state == CONNECTED, WAIT)
        finally:
            await adapter.close()
    assert 0 < peak <= MAX_FRAME_BYTES
    reason = next(reason for state, reason in states if state == RECONNECTING)
    assert "more than 1,048,576 bytes (1009 message too big)" in reason
    assert any(reason in r.getMessage() for r in fault_lines(caplog, "feedpool.angel"))


# -- a flood of faults ---------------------------------------------------------------------------


async def test_a_flood_of_garbage_makes_a_few_log_lines_with_counts(publisher, caplog):
    garbage = [bytes([n % 256]) * (1 + n % 40) for n in range(3_000)]  # no packet is so short
    garbage += [bytes([9]) + bytes(50), quote(SBIN.token, 80_000)[:100]]  # odd mode, truncated
    texts = [b"<html>garbage</html>"] * 500
    texts += [protocol.error_frame(protocol.ERROR_INVALID_PAYLOAD, "zz").encode()] * 1_000

    async def on_request(websocket: ServerConnection, text: str) -> None:
        await send_batch(websocket, garbage, text=False)
        await send_batch(websocket, texts, text=True)
        await send_batch(websocket, [quote(SBIN.token, 80_001)], text=False)

    published: list[bytes] = []
    publisher.tick_listener = lambda topic, payload: published.append(topic)
    expected = {
        "ignored a malformed tick": 3_002,
        "unexpected text from the broker": 500,
        "broker refused a request": 1_000,
    }
    async with broker(on_request=on_request) as (url, connections):
        adapter = angel_adapter(url, publisher)
        adapter.faults = FaultLog(adapter.log, "Connection 1: ", interval=INTERVAL)
        try:
            with caplog.at_level(logging.WARNING, logger="feedpool.angel"):
                await adapter.connect()
                await adapter.hold([SBIN], QUOTE)
                await eventually(lambda: published == [b"NSE_SBIN_QUOTE"], WAIT)
                await eventually(
                    lambda: counted(fault_lines(caplog, "feedpool.angel")) == expected, WAIT
                )
            assert adapter.state == CONNECTED and len(connections) == 1
        finally:
            await adapter.close()
    lines = fault_lines(caplog, "feedpool.angel")
    assert len(lines) <= 12, [r.getMessage() for r in lines]
    assert all(r.connection == 1 for r in lines)
    assert adapter.ticks_dropped == 3_002


async def test_a_flood_of_malformed_kite_messages_is_counted_and_logged_once(publisher, caplog):
    messages = [b"\x00\x02\x00\x08"] * 2_000  # two packets announced, part of one sent

    async def on_open(websocket: ServerConnection, number: int) -> None:
        await send_batch(websocket, messages, text=False)

    async with broker(on_open=on_open) as (url, _):
        credentials = KiteCredentials(Secret("key"), Secret("token"))
        adapter = KiteAdapter(1, url, credentials, publisher=publisher)
        try:
            await adapter.connect()
            await eventually(lambda: adapter.ticks_dropped == 2_000, WAIT)
            assert adapter.state == CONNECTED
        finally:
            await adapter.close()
    (line,) = fault_lines(caplog, "feedpool.zerodha")
    assert "ignored a malformed message: packet 1 of 2 claims 8 bytes" in line.getMessage()


# -- the socket and the fault log ----------------------------------------------------------------


async def test_a_message_whose_handling_fails_is_dropped_and_the_socket_goes_on(caplog):
    async def send(websocket) -> None:
        await websocket.send("boom")
        await websocket.send("fine")
        await websocket.wait_closed()

    messages: list[str | bytes] = []

    def on_message(message: str | bytes) -> None:
        if message == "boom":
            raise KeyError(message)
        messages.append(message)

    async with serve(send, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        socket = await open_websocket(url, BrokerSocket(on_message))
        try:
            await eventually(lambda: messages == ["fine"], WAIT)
            assert socket.messages_dropped == 1 and not socket.closed
        finally:
            await socket.close()
    assert "dropped a message its handling failed on: KeyError: 'boom'" in caplog.text


@pytest.mark.parametrize(
    ("close", "reason"),
    [
        (b"\x88\x00", "no code or reason given"),  # an empty close frame
        (b"\x88\x02\x03\xe8", "code 1000, no reason given"),
        (b"\x88\x11\x03\xf0Session expired", "code 1008, Session expired"),
    ],
)
async def test_the_brokers_close_frame_is_told_in_words(close, reason):
    async def send(websocket) -> None:
        websocket.transport.write(close)  # raw, as a broker may send it
        await websocket.wait_closed()

    lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    async with serve(send, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        socket = BrokerSocket(on_lost=lambda _, why: lost.set_result(why))
        await open_websocket(url, socket)
        assert await asyncio.wait_for(lost, WAIT) == f"connection closed by the broker ({reason})"


@pytest.mark.parametrize(
    "error", [ConnectionResetError(), TimeoutError(), OSError(" "), picows.WSError("")]
)
async def test_a_broker_out_of_reach_is_reported_with_its_error_named(monkeypatch, error):
    async def refuse(*_, **__):
        raise error

    monkeypatch.setattr(picows, "ws_connect", refuse)
    credentials = BROKERS["angel"].simulator_credentials(SimulatorCredentials())
    with pytest.raises(BrokerConnectionError) as caught:
        await SmartStreamAdapter.open("ws://127.0.0.1:9/", credentials, "a test connection")
    named = type(error).__name__
    assert str(caught.value) == f"cannot reach the broker at ws://127.0.0.1:9/: {named}"


async def test_a_fault_log_logs_the_first_of_a_kind_and_counts_the_rest(caplog):
    log = logging.getLogger("feedpool.test")
    faults = FaultLog(logging.LoggerAdapter(log, {"connection": 2}), "Here: ", interval=0.05)
    with caplog.at_level(logging.WARNING, logger="feedpool.test"):
        for n in range(100):
            faults.report("a bad thing", "number %d", n)
        faults.report("another thing")
        await eventually(lambda: len(caplog.records) == 3, WAIT)
        assert [r.getMessage() for r in caplog.records] == [
            "Here: a bad thing: number 0",
            "Here: another thing",
            "Here: a bad thing: 99 more like it in the last 0.05 s",
        ]
        await eventually(lambda: not faults._counts, WAIT)  # a quiet interval ends the count
        faults.report("a bad thing", "number %d", 100)
    assert caplog.records[-1].getMessage() == "Here: a bad thing: number 100"
    assert all(r.connection == 2 for r in caplog.records)


async def test_the_desktops_feed_socket_bounds_a_message_too(monkeypatch):
    monkeypatch.setattr(feed_socket, "MAX_MESSAGE_BYTES", 1_000)

    async def send(websocket) -> None:
        await websocket.send(["a" * 600, "b" * 600])
        await websocket.wait_closed()

    socket = feed_socket.FeedSocket(lambda _: None, ping_seconds=WAIT, pong_timeout=WAIT)
    async with serve(send, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        await asyncio.wait_for(picows.ws_connect(lambda: socket, url), WAIT)
        with pytest.raises(feed_socket.ConnectionLost, match="more than 1,000 bytes"):
            await asyncio.wait_for(socket.ended(), WAIT)
