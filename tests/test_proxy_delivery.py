"""Tick delivery under load: a stalled client, conflation, closing it, and the rate limit."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket

from proxy_client import API_KEY, Client, eventually
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError
from websockets.protocol import State

STALL_SECONDS = 1.0
OUTBOX_LIMIT = 300


async def stalled_client(url: str, symbols: list[tuple[str, str]]):
    """A client that subscribes, then stops reading; its socket buffers are kept small."""
    host, port = url.removeprefix("ws://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    websocket = await connect(url, sock=sock, compression=None, max_queue=1, max_size=None)
    await websocket.send(json.dumps({"action": "authenticate", "api_key": API_KEY}))
    request = {
        "action": "subscribe",
        "symbols": [{"symbol": s, "exchange": e} for s, e in symbols],
        "mode": 3,
    }
    await websocket.send(json.dumps(request))
    while json.loads(await websocket.recv()).get("type") != "subscribe":
        pass
    return websocket


async def test_a_client_that_never_reads_delays_no_one_and_is_closed_with_a_reason(serve, symbols):
    proxy = await serve(10, outbox_limit=OUTBOX_LIMIT, stall_seconds=STALL_SECONDS)
    watched = symbols(20)
    fast = await Client.open(proxy.url)
    assert (await fast.subscribe(watched, mode=1))["status"] == "success"
    stalled = await stalled_client(proxy.url, symbols(400))
    (session,) = (s for s in proxy.sessions.values() if len(s.subscriptions) == 400)

    # While the stalled client's outbox is full and conflating, the other client's ticks keep
    # arriving at once: latency from the exchange timestamp to receipt stays small.
    await eventually(lambda: session.outbox.conflated > 0)
    fast.drain_ticks()
    await eventually(lambda: session.websocket.state is not State.OPEN)
    latencies = [t["received_ms"] - t["data"]["timestamp"] for t in fast.drain_ticks()]
    assert len(latencies) > 20 * 10 * STALL_SECONDS / 4
    assert max(latencies) < 250, sorted(latencies)[-5:]

    # The stalled client, once it reads again, finds why it was closed.
    async def read_to_the_end() -> None:
        with contextlib.suppress(ConnectionClosedError):
            async for _ in stalled:
                pass

    await asyncio.wait_for(read_to_the_end(), 10)
    assert stalled.close_code == 1008
    assert stalled.close_reason == f"outbox full for {STALL_SECONDS:g} s: client not reading"
    # Unlisted at once; what only the stalled client held is released once the broker is told.
    await eventually(lambda: len(proxy.sessions) == 1 and proxy.pool.total_symbols == 20)
    await fast.tick(within=5)
    await fast.close()


async def test_rate_limit_sends_at_most_one_update_per_interval(serve):
    interval_ms = 200
    proxy = await serve(50, min_interval_ms=interval_ms)
    client = await Client.open(proxy.url)
    assert (await client.subscribe([("SBIN", "NSE"), ("INFY", "NSE")], mode=1))[
        "status"
    ] == "success"
    first = await client.tick(symbol="SBIN")
    ticks = [first]
    while ticks[-1]["received_ms"] - first["received_ms"] < 6 * interval_ms:
        ticks.append(await client.tick(symbol="SBIN"))
    gaps = [b["received_ms"] - a["received_ms"] for a, b in itertools.pairwise(ticks)]
    assert min(gaps) >= interval_ms * 0.9, gaps
    assert len(ticks) <= 8
    stamps = [t["data"]["timestamp"] for t in ticks]
    assert stamps == sorted(stamps)
    (session,) = proxy.sessions.values()
    assert session.throttle.superseded > 0  # 50 ticks/s were offered, 5/s sent
    await client.close()
