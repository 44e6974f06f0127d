"""Several broker accounts as one pool: placement over the accounts, failover and return.

Each account is a simulator of its own (its broker's protocol, its own market), a pool with its
session, and the accounts one :class:`PooledAccounts` behind the real client API.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from logins import kite_login
from proxy_client import BusMonitor, Client, eventually, start_proxy

from backend.brokers import BROKERS
from backend.brokers.session import FixedSession
from backend.bus.messages import SymbolsMoved
from backend.feed import DISPLACED, FAILOVER, MOVES_TOPIC, RETURN
from backend.instruments.master import InstrumentMaster
from backend.pool.accounts import PooledAccounts
from backend.pool.connection_pool import ConnectionPool
from backend.pool.ledger import Account
from backend.runtime.settings import Settings
from backend.simulator import ExchangeSimulator, SimulatorCredentials

TICKS_PER_SECOND = 5
INTERVAL_MS = 1000 / TICKS_PER_SECOND


@dataclass
class Spec:
    name: str
    broker: str
    connections: int
    symbols: int


@pytest.fixture
async def accounts(master, publisher):
    """``start(*specs, ticks_per_second)``: one simulator and pool per spec, in that order, as
    one pool behind a client API; returns the proxy and the simulators."""
    started: list = []

    async def start(*specs: Spec, ticks_per_second: float = 0):
        made, simulators, first = [], [], 1
        for number, spec in enumerate(specs):
            credentials = SimulatorCredentials(client_code=f"ACCOUNT{number + 1}")
            simulator = ExchangeSimulator(
                master,
                credentials,
                broker=spec.broker,
                ticks_per_second=ticks_per_second,
                seed=number + 1,
            )
            await simulator.start()
            simulators.append(simulator)
            broker = BROKERS[spec.broker]
            session = FixedSession(broker.simulator_credentials(credentials), broker.label)

            def adapter(index: int, broker=broker, url=simulator.url, session=session):
                return broker.adapter(
                    index, url, session, reconnect_first_delay=0.05, reconnect_max_delay=0.3
                )

            pool = ConnectionPool(
                spec.broker,
                credentials.client_code,
                InstrumentMaster(simulator.instruments.values()),
                adapter,
                publisher,
                max_symbols_per_connection=spec.symbols,
                max_connections=spec.connections,
                session=session,
                account=spec.name,
                first_connection=first,
            )
            first += spec.connections
            values = (
                Settings()
                .replace(**broker.simulator_settings(credentials, simulator.rest_url))
                .broker_values
            )
            made.append(Account(spec.name, spec.broker, pool, values))
        pooled = PooledAccounts(made, publisher, failover_seconds=1.0, settle_seconds=0.5)
        proxy = await start_proxy(pooled)
        started.append((proxy, simulators))
        return proxy, simulators

    yield start
    for proxy, simulators in started:
        await proxy.close()
        await proxy.pool.close()
        for simulator in simulators:
            await simulator.stop()


def loads(proxy) -> dict[str, int]:
    return {a.name: a.pool.total_symbols for a in proxy.pool.accounts}


async def test_two_accounts_of_two_brokers_hold_their_sum_and_a_refusal_names_both(
    accounts, symbols
):
    proxy, _ = await accounts(Spec("angel", "angel", 3, 1000), Spec("kite", "zerodha", 3, 3000))
    client = await Client.open(proxy.url)
    wanted = symbols(12_001)
    placed = []
    for start in (0, 6000):  # a request holds at most 10,000 symbols
        reply = await client.subscribe(wanted[start : start + 6000], mode=1)
        assert reply["status"] == "success", str(reply)[:300]
        placed += reply["subscriptions"]
    assert loads(proxy) == {"angel": 3000, "kite": 9000}
    assert {s["account"] for s in placed[:3000]} == {"angel"}
    assert {s["account"] for s in placed[3000:]} == {"kite"}
    assert sorted({s["connection"] for s in placed}) == [1, 2, 3, 4, 5, 6]

    (refused,) = (await client.subscribe(wanted[12_000:], mode=1))["subscriptions"]
    assert refused["code"] == "MAX_CAPACITY_REACHED"
    assert "angel (angel) 3,000/3,000 symbols, serving" in refused["message"]
    assert "kite (zerodha) 9,000/9,000 symbols, serving" in refused["message"]
    (unknown,) = (await client.subscribe([("NOSUCH", "NSE")], mode=1))["subscriptions"]
    assert unknown["code"] == "INVALID_PARAMETERS" and "NOSUCH" in unknown["message"]

    info = await client.request({"action": "get_broker_info"})
    assert [(a["name"], a["broker"], a["symbols"]) for a in info["accounts"]] == [
        ("angel", "angel", 3000),
        ("kite", "zerodha", 9000),
    ]
    stats = proxy.pool.get_stats()
    assert stats.capacity == 12_000 and stats.total_symbols == 12_000
    assert [c.account for c in stats.connections] == ["angel"] * 3 + ["kite"] * 3
    await client.close()


async def test_two_angel_accounts_give_6000_symbols(accounts, symbols):
    proxy, simulators = await accounts(
        Spec("family-1", "angel", 3, 1000), Spec("family-2", "angel", 3, 1000)
    )
    assert [s.credentials.client_code for s in simulators] == ["ACCOUNT1", "ACCOUNT2"]
    client = await Client.open(proxy.url)
    assert (await client.subscribe(symbols(6000), mode=2))["status"] == "success"
    assert loads(proxy) == {"family-1": 3000, "family-2": 3000}
    # Letting go frees the room on the account that held it, and the ledger forgets it.
    reply = await client.request(
        {
            "action": "unsubscribe",
            "symbols": [{"symbol": s, "exchange": e, "mode": 2} for s, e in symbols(10)],
        }
    )
    assert reply["status"] == "success"
    assert loads(proxy) == {"family-1": 2990, "family-2": 3000}
    await client.close()


def moves(publisher) -> list[SymbolsMoved]:
    """Every ``SYS.MOVES`` message the pool publishes from now on."""
    seen: list[SymbolsMoved] = []
    original = publisher.publish

    def publish(topic, message):
        if topic == MOVES_TOPIC:
            seen.append(message)
        return original(topic, message)

    publisher.publish = publish
    return seen


def assert_no_gap(ticks: list[dict], returned: list, stayed: list, switch_ms: float) -> None:
    """No returned symbol's ticks are further apart across the switch at ``switch_ms`` than
    two ticks of a symbol that ``stayed`` on its account ever are.

    The simulator ticks each symbol at random moments (5 a second on average here), so the
    symbols that stayed show how far apart two ticks may be without any move."""

    def arrivals(symbol: str) -> list[float]:
        return [t["received_ms"] for t in ticks if t["symbol"] == symbol]

    widest = max(
        max((b - a for a, b in itertools.pairwise(arrivals(s))), default=0) for s, _ in stayed
    )
    for symbol, _ in returned:
        times = arrivals(symbol)
        before = [t for t in times if t <= switch_ms]
        after = [t for t in times if t > switch_ms]
        assert after, symbol
        if before:
            assert after[0] - before[-1] <= widest + 100, (symbol, widest, times)


async def test_kite_fails_over_to_angel_and_comes_back_make_before_break(
    accounts, symbols, publisher
):
    proxy, (kite, _) = await accounts(
        Spec("kite", "zerodha", 1, 20), Spec("angel", "angel", 1, 15), ticks_per_second=5
    )
    moved = moves(publisher)
    client = await Client.open(proxy.url)
    own, extra = symbols(20), symbols(5, start=20)
    assert (await client.subscribe(own, mode=2))["status"] == "success"
    assert (await client.subscribe(extra, mode=2))["status"] == "success"
    assert loads(proxy) == {"kite": 20, "angel": 5}

    ended = time.time() * 1000
    await kite.expire_sessions()
    notice = await client.reply(10)
    assert notice["code"] == "BROKER_CONNECTION_ERROR"
    assert "no other account has room for 10 symbols" in notice["message"], notice
    # The first ten (in subscription order) tick again through Angel One within 3 s.
    waiting = {s for s, _ in own[:10]}
    async with asyncio.timeout(3):
        while waiting:
            tick = await client.ticks.get()
            if tick["data"]["timestamp"] > ended:
                waiting.discard(tick["symbol"])
    assert loads(proxy) == {"kite": 10, "angel": 15}
    (failover,) = moved
    assert failover.kind == FAILOVER and (failover.from_account, failover.to_account) == (
        "kite",
        "angel",
    )
    assert failover.symbols == [f"{e}:{s}" for s, e in own[:10]]

    client.drain_ticks()
    token = await kite_login(kite.credentials, kite.rest_url)
    refused = await client.request(
        {"action": "set_session", "account": "kite", "settings": {"KITE_API_KEY": token}}
    )
    assert refused["code"] == "INVALID_PARAMETERS" and token not in refused["message"]
    assert "takes these settings from a login: KITE_ACCESS_TOKEN" in refused["message"]
    taken = await client.request(
        {"action": "set_session", "account": "kite", "settings": {"KITE_ACCESS_TOKEN": token}}
    )
    assert taken == {"type": "set_session", "status": "success", "account": "kite"}
    await eventually(lambda: len(moved) == 2, within=15)
    back = moved[1]
    assert back.kind == RETURN and back.to_account == "kite" and len(back.symbols) == 10
    assert loads(proxy) == {"kite": 20, "angel": 5}
    await asyncio.sleep(1.5)  # ticks after the return, to look at
    ticks = client.drain_ticks()

    assert_no_gap(ticks, own[:10], own[10:], back.time * 1000)
    # Angel One holds none of them any more: its copy was muted at Kite's first tick of each,
    # before that tick was published, and let go of after.
    angel_adapter = proxy.pool.accounts[1].pool.adapters[0]
    assert {i.symbol for i, _ in angel_adapter.held.values()} == {s for s, _ in extra}
    stats = {a.name: a for a in proxy.pool.get_stats().accounts}
    assert (stats["kite"].failed_over, stats["kite"].returned) == (10, 10)
    assert (stats["angel"].borrowed, stats["kite"].lent) == (0, 0)
    await client.close()


async def test_an_accounts_own_subscription_displaces_a_borrowed_one(accounts, symbols, publisher):
    proxy, (kite, _) = await accounts(
        Spec("kite", "zerodha", 1, 4), Spec("angel", "angel", 1, 6), ticks_per_second=2
    )
    moved = moves(publisher)
    holder, other = await Client.open(proxy.url), await Client.open(proxy.url)
    assert (await holder.subscribe(symbols(4), mode=1))["status"] == "success"
    assert (await holder.subscribe(symbols(2, start=4), mode=1))["status"] == "success"
    await kite.expire_sessions()
    await eventually(lambda: loads(proxy) == {"kite": 0, "angel": 6})
    while not holder.replies.empty():
        holder.replies.get_nowait()

    # Kite cannot serve: Angel One takes the new symbol as its own, and gives up the most
    # recently subscribed borrowed one for it.
    reply = await other.subscribe(symbols(1, start=6), mode=1)
    assert reply["subscriptions"][0]["account"] == "angel", reply
    told = await holder.reply(5)
    assert told["code"] == "BROKER_CONNECTION_ERROR" and "needs the room" in told["message"]
    assert loads(proxy) == {"kite": 1, "angel": 6}
    displaced = moved[-1]
    assert displaced.kind == DISPLACED and displaced.symbols == [
        f"{e}:{s}" for s, e in symbols(1, start=3)
    ]
    await holder.close()
    await other.close()


async def test_the_backend_process_plays_two_simulated_accounts(backends):
    backend, ready = await backends(
        BROKER="simulator", SIMULATOR_ACCOUNTS="angel,zerodha", SIMULATOR_TICKS_PER_SECOND="2"
    )
    assert ready["event"] == "ready", ready
    bus = BusMonitor(ready["zmq"])
    client = await Client.open(ready["ws"])
    try:
        reply = await client.subscribe([("SBIN", "NSE")], mode=2)
        (placed,) = reply["subscriptions"]
        assert (placed["account"], placed["connection"]) == ("angel", 1), placed
        await client.tick(within=10, symbol="SBIN")
        seen: list[dict] = []

        def two_accounts(topic: str, payload: dict) -> bool:
            if topic == "SYS.POOL" and payload.get("accounts"):
                seen.append(payload)
            return bool(seen)

        await bus.until(two_accounts)
        pool = seen[0]
        assert [(a["name"], a["broker"], a["capacity"]) for a in pool["accounts"]] == [
            ("angel", "angel", 3000),
            ("zerodha", "zerodha", 9000),
        ]
        assert pool["capacity"] == 12_000 and pool["total_symbols"] == 1
    finally:
        await client.close()
        bus.close()
    assert "account angel" in backend.stderr.read_text()


async def test_a_connection_down_longer_than_failover_seconds_fails_over_and_returns(
    accounts, symbols, publisher
):
    proxy, (kite, _) = await accounts(
        Spec("kite", "zerodha", 1, 10), Spec("angel", "angel", 1, 20), ticks_per_second=5
    )
    moved = moves(publisher)
    client = await Client.open(proxy.url)
    wanted = symbols(10)
    assert (await client.subscribe(wanted, mode=1))["status"] == "success"
    port = int(urlsplit(kite.url).port)

    await kite.stop()  # Kite unreachable: its connection reconnects, in vain
    down = time.time() * 1000
    await eventually(lambda: len(moved) == 1, within=10)
    (failover,) = moved
    assert failover.kind == FAILOVER and "down longer than 1 s" in failover.reason
    assert failover.connections == [2] * 10  # Angel One's connection, numbered after Kite's
    waiting = {s for s, _ in wanted}
    async with asyncio.timeout(5):
        while waiting:
            tick = await client.ticks.get()
            if tick["data"]["timestamp"] > down:
                waiting.discard(tick["symbol"])
    assert client.replies.empty()  # every symbol moved: nobody is told of the outage

    await kite.start(port=port)  # back: its symbols return once it has settled
    await eventually(lambda: len(moved) == 2, within=15)
    assert moved[1].kind == RETURN and moved[1].connections == [1] * 10
    assert loads(proxy) == {"kite": 10, "angel": 0}
    await client.close()
