"""Clients come and go: what one leaves behind is freed when it leaves, even mid-request.

The proxy's side of a departed client must be freed by reference counting: the collector runs
its older generations seldom (:mod:`backend.runtime.collector`), so reference cycles would pile up.
A client whose request the pool has not answered yet must still be read (its pings answered),
and must be unlisted, and what it held released, once its connection is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from proxy_client import Client, eventually

import backend.proxy.client
from backend.pool.connection_pool import ConnectionPool, Outcome
from backend.proxy import WebSocketProxy

SBIN, INFY = ("SBIN", "NSE"), ("INFY", "NSE")
#: Growth allowed over 1,000 clients; before the fix they left about 15 KB each behind.
RSS_GROWTH_KB = 4096


@contextlib.contextmanager
def collector_off() -> Iterator[None]:
    """Only reference counting frees anything meanwhile."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class Gate:
    """Holds ``pool``'s subscribe requests until :meth:`open`, as a broker that does not answer
    would; then they go to the pool as they came."""

    def __init__(self, pool: ConnectionPool, monkeypatch: pytest.MonkeyPatch) -> None:
        self._subscribe_many = pool.subscribe_many
        self._opened = asyncio.Event()
        self.held = 0
        self.done = 0
        monkeypatch.setattr(pool, "subscribe_many", self._hold)

    async def _hold(self, *args) -> list[Outcome]:
        self.held += 1
        await self._opened.wait()
        outcomes = await self._subscribe_many(*args)
        self.done += 1
        return outcomes

    def open(self) -> None:
        self._opened.set()


@pytest.fixture
def gate(serve, monkeypatch):
    """``gate(pool)``: a :class:`Gate` on ``pool``, opened after the test (before its proxy
    closes, so that a proxy that waits for the requests in flight does not hang the tests)."""
    gates: list[Gate] = []

    def make(pool: ConnectionPool) -> Gate:
        gates.append(Gate(pool, monkeypatch))
        return gates[-1]

    yield make
    for each in gates:
        each.open()


def vm_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


async def come_and_go(url: str, clients: int, symbols: list[tuple[str, str]]) -> None:
    """``clients`` clients one after another: each subscribes ``symbols`` at Depth, leaves."""
    for _ in range(clients):
        client = await Client.open(url)
        assert (await client.subscribe(symbols, mode=3))["status"] == "success"
        await client.close()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
async def test_the_backend_does_not_grow_with_clients_coming_and_going(backends, symbols):
    _, ready = await backends()
    await come_and_go(ready["ws"], 200, symbols(10))
    before = vm_rss_kb(ready["pid"])
    await come_and_go(ready["ws"], 1000, symbols(10))
    grown = vm_rss_kb(ready["pid"]) - before
    assert grown < RSS_GROWTH_KB, f"RSS grew {grown} KB over 1,000 clients"


@pytest.mark.parametrize("min_interval_ms", [0, 50])
async def test_a_departed_session_is_freed_by_reference_counting(serve, min_interval_ms):
    proxy = await serve(ticks_per_second=50, min_interval_ms=min_interval_ms)
    client = await Client.open(proxy.url)
    assert (await client.subscribe([SBIN, INFY], mode=3))["status"] == "success"
    await client.tick(symbol="SBIN")
    (session,) = proxy.sessions.values()
    freed = weakref.ref(session), weakref.ref(session.websocket.protocol)
    del session
    with collector_off():
        await client.close()
        await eventually(lambda: all(ref() is None for ref in freed), within=5)
    assert proxy.pool.total_symbols == 0


async def gone_mid_request(
    proxy: WebSocketProxy, gate: Callable[[ConnectionPool], Gate]
) -> tuple[Gate, weakref.ref[backend.proxy.client.Client]]:
    """A client that holds SBIN, asks for INFY, which a gate holds up, and goes away without a
    closing handshake: the gate, and the proxy's side of the client."""
    client = await Client.open(proxy.url)
    assert (await client.subscribe([SBIN]))["status"] == "success"
    held = gate(proxy.pool)
    await client.send({"action": "subscribe", "symbols": [{"symbol": "INFY", "exchange": "NSE"}]})
    await eventually(lambda: held.held == 1, within=5)
    (session,) = proxy.sessions.values()
    client.websocket.transport.abort()
    await client.close()
    return held, weakref.ref(session)


async def test_a_client_gone_mid_request_is_unlisted_and_its_late_result_released(serve, gate):
    proxy = await serve(ticks_per_second=50)
    pool = proxy.pool
    with collector_off():
        held, gone = await gone_mid_request(proxy, gate)
        await eventually(lambda: not proxy.sessions and pool.total_symbols == 0, within=5)
        assert proxy.stats().clients == 0
        assert gone() is not None  # its request in flight is carried out, not cancelled

        held.open()
        await eventually(lambda: held.done == 1 and gone() is None, within=5)
    assert pool.total_symbols == 0 and len(proxy.subscription_index) == 0


async def test_the_proxy_closes_without_waiting_for_the_requests_in_flight(serve, gate):
    proxy = await serve(ticks_per_second=50)
    held, _ = await gone_mid_request(proxy, gate)
    await eventually(lambda: not proxy.sessions, within=5)
    staying = await Client.open(proxy.url)
    await staying.send({"action": "subscribe", "symbols": [{"symbol": "TCS", "exchange": "NSE"}]})
    await eventually(lambda: held.held == 2, within=5)

    await asyncio.wait_for(proxy.close(), 5)
    assert await staying.closed() == (1001, "server shutting down")
    assert held.done == 0


async def test_a_client_with_a_request_in_flight_is_still_read_and_its_pings_answered(serve, gate):
    proxy = await serve(ticks_per_second=50)
    held = gate(proxy.pool)
    client = await Client.open(proxy.url)
    await client.send({"action": "subscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE"}]})
    await eventually(lambda: held.held == 1, within=5)
    for _ in range(20):  # a heartbeat of the client's own, queued behind the subscription
        await client.send({"action": "ping"})
    for _ in range(2):  # the second is read after the proxy has taken in all the rest
        pong = await client.websocket.ping()
        await asyncio.wait_for(pong, 5)

    held.open()
    answers = [(await client.reply())["type"] for _ in range(21)]
    assert answers == ["subscribe"] + ["pong"] * 20  # in the order asked
    await client.close()
