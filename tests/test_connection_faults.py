"""A broker connection after a drop and with a broker that stops answering: requests matched to
their answers, a request the broker did not confirm reported as failed, a frozen broker found by
the WebSocket keepalive. The real simulator, through a relay that can hold its answers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time

import pytest
from proxy_client import eventually, now_ms
from relay import Relay

from backend.brokers.angel import adapter as angel
from backend.feed import BROKER_ERROR, CONNECTED, LTP, RECONNECTING

WATCHLIST = "watchlist"
WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: A close frame, code 1001 (going away), as a server sends it: unmasked.
CLOSE_GOING_AWAY = b"\x88\x02\x03\xe9"


@pytest.fixture
async def relayed(make_simulator, make_pool):
    """A pool of one connection on a simulator ticking 5 times a second, through a relay."""
    relays: list[Relay] = []

    async def make():
        simulator = await make_simulator(ticks_per_second=5)
        host, port = simulator.url.removeprefix("ws://").split("/")[0].split(":")
        relay = Relay(host, int(port))
        await relay.start()
        relays.append(relay)
        url = simulator.url.replace(f":{port}/", f":{relay.port}/")
        return simulator, relay, make_pool(simulator, max_connections=1, url=url)

    yield make
    for relay in relays:
        await relay.stop()


async def test_requests_after_a_drop_take_no_longer_than_before(
    make_simulator, make_pool, symbols, monkeypatch
):
    """The heartbeat of a connection that dropped leaves nothing the next one waits for."""
    monkeypatch.setattr(angel, "HEARTBEAT_SECONDS", 1.0)
    simulator = await make_simulator(ticks_per_second=1)
    pool = make_pool(simulator)
    first, other = symbols(2)
    assert (await pool.subscribe(*first, LTP, WATCHLIST)).ok
    [adapter] = pool.adapters
    [connection] = simulator.connections
    await simulator.drop(connection.id)
    await eventually(lambda: adapter.state == RECONNECTING)
    await eventually(lambda: adapter.state == CONNECTED)

    # For three heartbeats, over which the dropped connection's heartbeat wakes: each request
    # waits for the broker's answer to it, and no longer.
    latencies = []
    until = time.monotonic() + 3 * angel.HEARTBEAT_SECONDS
    while time.monotonic() < until:
        started = time.monotonic()
        assert (await pool.subscribe(*other, LTP, WATCHLIST)).ok
        assert (await pool.unsubscribe(*other, LTP, WATCHLIST)).ok
        latencies.append(time.monotonic() - started)
    assert max(latencies) < angel.HEARTBEAT_SECONDS / 2, max(latencies)


async def test_a_request_the_broker_does_not_confirm_is_not_a_success(
    relayed, symbols, monkeypatch
):
    monkeypatch.setattr(angel, "ANSWER_TIMEOUT", 1.0)
    _, relay, pool = await relayed()
    held, unconfirmed = symbols(2)
    assert (await pool.subscribe(*held, LTP, WATCHLIST)).ok

    relay.hold()
    outcome = await pool.subscribe(*unconfirmed, LTP, WATCHLIST)
    assert not outcome.ok and outcome.code == BROKER_ERROR
    assert "did not confirm" in outcome.message
    assert pool.holds(WATCHLIST) == [(*held, LTP)]
    [adapter] = pool.adapters
    assert [i.symbol for i, _ in adapter.held.values()] == [held[0]]

    relay.release()
    await eventually(lambda: adapter.state == CONNECTED, within=20)
    assert (await pool.subscribe(*unconfirmed, LTP, WATCHLIST)).ok


async def test_a_frozen_broker_is_found_by_the_keepalive_and_the_state_follows_the_ticks(
    relayed, symbols, bus
):
    _, relay, pool = await relayed()
    wanted = symbols(5)
    assert all(o.ok for o in await pool.subscribe_many(wanted, LTP, WATCHLIST))
    reader = bus("NSE", "BSE", "NFO", "MCX", "CDS", "SYS.HEALTH")
    await reader.joined()
    [adapter] = pool.adapters

    relay.hold()  # the connection stays open; nothing comes back, pings included
    await eventually(lambda: adapter.state == RECONNECTING, within=10)

    relay.release()
    states: list[str] = []
    released = now_ms()
    topics = {f"{exchange}_{symbol}_LTP" for symbol, exchange in wanted}
    ticked: set[str] = set()

    def connected_once_ticking(topic: str, payload: dict) -> bool:
        if topic == "SYS.HEALTH":
            states.append(payload["state"])
        elif topic in topics and payload["timestamp"] > released:
            ticked.add(topic)
            assert states[-1:] == [CONNECTED], "ticks flow while the bus says " + str(states)
        return ticked == topics

    await reader.until(connected_once_ticking, timeout=30)


async def test_a_connection_the_broker_closes_as_it_opens_is_not_taken_for_open(make_pool, symbols):
    """The broker's upgrade answer and its close frame arrive in one read, before the adapter
    has the socket: the connection counts as refused, never as open and silent."""
    opened = 0

    async def accept_then_close(reader, writer):
        nonlocal opened
        opened += 1
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + WEBSOCKET_GUID).digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
            + accept
            + b"\r\n\r\n"
            + CLOSE_GOING_AWAY
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(accept_then_close, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        pool = make_pool(None, url=f"ws://127.0.0.1:{port}/smart-stream")
        outcome = await pool.subscribe(*symbols(1)[0], LTP, WATCHLIST)
        assert not outcome.ok and "closed connection 1 as it opened" in outcome.message
        assert opened == 1 and pool.total_symbols == 0
    finally:
        server.close()
