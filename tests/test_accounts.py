"""Several broker accounts as one pool: placement over the accounts, failover and return.

Each account is a simulator of its own (its broker's protocol, its own market), a pool with its
session, and the accounts one :class:`PooledAccounts` behind the real client API.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from carrier_tap import CarrierTap
from logins import kite_login
from proxy_client import BusMonitor, Client, eventually, start_proxy

from backend.brokers import BROKERS
from backend.brokers.session import FixedSession
from backend.bus.messages import SymbolsMoved
from backend.feed import DISPLACED, FAILOVER, MOVES_TOPIC, QUOTE, RETURN, tick_topic
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
    """``start(*specs, ticks_per_second, carried)``: one simulator and pool per spec, in that
    order, as one pool behind a client API; returns the proxy and the simulators. With
    ``carried``, each tick published is noted there with the account that carried it
    (:class:`CarrierTap`)."""
    started: list = []

    async def start(*specs: Spec, ticks_per_second: float = 0, carried: dict | None = None):
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

            tap = None if carried is None else CarrierTap(publisher, spec.name, carried)

            def adapter(index: int, broker=broker, url=simulator.url, session=session, tap=tap):
                return broker.adapter(
                    index,
                    url,
                    session,
                    publisher=tap,
                    reconnect_first_delay=0.05,
                    reconnect_max_delay=0.3,
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


def switch_gaps(
    ticks: list[dict], carried: dict, returned: list, unmoved: list, since_ms: float
) -> tuple[list[float], list[float], int]:
    """Per returned symbol, the gap across its switch at the client: from its last tick Angel
    One carried to its first Kite carried after ``since_ms``; at those same moments, the time
    since the last tick of each symbol Angel One carried throughout (what a switch that adds
    nothing shows: the simulator ticks at random moments); and the ticks Angel One carried of a
    symbol after its first on Kite (duplicates)."""
    arrivals: dict[str, list[tuple[float, str]]] = {}
    for tick in ticks:
        key = f"{tick['exchange']}_{tick['symbol']}".encode()
        account = carried.get((key, tick["data"]["timestamp"]), "")
        arrivals.setdefault(tick["symbol"], []).append((tick["received_ms"], account))
    switches, gaps, duplicates = [], [], 0
    for symbol, _ in returned:
        seen = arrivals[symbol]
        first = next(at for at, account in seen if account == "kite" and at > since_ms)
        last = max(at for at, account in seen if account == "angel" and at <= first)
        duplicates += sum(account == "angel" and at > first for at, account in seen)
        gaps.append(first - last)
        switches.append(first)
    waits = []
    for symbol, _ in unmoved:
        stream = [at for at, _ in arrivals.get(symbol, [])]
        for moment in switches:
            before = [t for t in stream if t <= moment]
            if before:
                waits.append(moment - before[-1])
    return gaps, waits, duplicates


async def test_kite_fails_over_to_angel_and_comes_back_make_before_break(
    accounts, symbols, publisher
):
    carried: dict = {}
    proxy, (kite, _) = await accounts(
        Spec("kite", "zerodha", 1, 60),
        Spec("angel", "angel", 1, 45),
        ticks_per_second=5,
        carried=carried,
    )
    moved = moves(publisher)
    client = await Client.open(proxy.url)
    own, extra = symbols(60), symbols(15, start=60)
    assert (await client.subscribe(own, mode=2))["status"] == "success"
    assert (await client.subscribe(extra, mode=2))["status"] == "success"
    assert loads(proxy) == {"kite": 60, "angel": 15}

    ended = time.time() * 1000
    await kite.expire_sessions()
    notice = await client.reply(10)
    assert notice["code"] == "BROKER_CONNECTION_ERROR"
    assert "no other account has room for 30 symbols" in notice["message"], notice
    # The first 30 (in subscription order) tick again through Angel One within 3 s.
    waiting = {s for s, _ in own[:30]}
    async with asyncio.timeout(3):
        while waiting:
            tick = await client.ticks.get()
            if tick["data"]["timestamp"] > ended:
                waiting.discard(tick["symbol"])
    assert loads(proxy) == {"kite": 30, "angel": 45}
    (failover,) = moved
    assert failover.kind == FAILOVER and (failover.from_account, failover.to_account) == (
        "kite",
        "angel",
    )
    assert failover.symbols == [f"{e}:{s}" for s, e in own[:30]]

    asked = time.time() * 1000
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
    assert back.kind == RETURN and back.to_account == "kite" and len(back.symbols) == 30
    assert loads(proxy) == {"kite": 60, "angel": 15}
    await asyncio.sleep(0.5)  # the ticks in flight at the return's end, to look at
    gaps, waits, duplicates = switch_gaps(client.drain_ticks(), carried, own[:30], extra, asked)
    # Angel One carried each until Kite's first tick of it, then never again: no duplicate, and
    # no gap beyond the simulator's own spacing (a switch before Kite's first tick would add
    # the wait for it, 200 ms on average at 5 ticks/s; the noise of the means is about 40 ms).
    assert duplicates == 0 and len(waits) >= len(gaps)
    assert statistics.fmean(gaps) <= statistics.fmean(waits) + 120, (gaps, waits)
    # Angel One holds none of them any more.
    angel_adapter = proxy.pool.accounts[1].pool.adapters[0]
    assert {i.symbol for i, _ in angel_adapter.held.values()} == {s for s, _ in extra}
    stats = {a.name: a for a in proxy.pool.get_stats().accounts}
    assert (stats["kite"].failed_over, stats["kite"].returned) == (30, 30)
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


async def test_the_first_tick_watch_runs_before_its_tick_is_published_and_mute_silences(
    make_simulator, make_pool, publisher, symbols
):
    """The two halves of a return's make-before-break, on a real pool: the home account's
    first tick of a symbol calls its watch before that tick is published (the watch mutes the
    carrier's copy there), and a muted symbol publishes nothing more while still held."""
    pool = make_pool(await make_simulator(ticks_per_second=20))
    published: list[bytes] = []
    publisher.tick_listener = lambda topic, payload: published.append(topic)
    (watched, _), (muted, _) = symbols(2)
    topic = tick_topic("NSE", watched, QUOTE).encode()
    at_first_tick: list[int] = []
    pool.first_tick_watch[topic] = lambda: at_first_tick.append(published.count(topic))
    outcomes = await pool.subscribe_many([(watched, "NSE"), (muted, "NSE")], QUOTE, "holder")
    assert all(o.ok for o in outcomes)
    await eventually(lambda: at_first_tick and published.count(topic) >= 3)
    assert at_first_tick == [0] and topic not in pool.first_tick_watch  # once, before any

    silenced = tick_topic("NSE", muted, QUOTE).encode()
    await eventually(lambda: silenced in published)
    pool.mute((muted, "NSE"))
    after, ticking = published.count(silenced), published.count(topic)
    await eventually(lambda: published.count(topic) >= ticking + 10)  # as often as the muted
    assert published.count(silenced) == after  # held, ticking at the broker, not published
    assert pool.holders_of((muted, "NSE")) == {QUOTE: {"holder"}}
