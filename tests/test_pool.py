"""The connection pool against the real simulator, over real WebSockets and a real bus."""

from __future__ import annotations

import asyncio
import logging
import time

from proxy_client import eventually
from relay import Relay

from backend.brokers.angel.adapter import SmartStreamAdapter
from backend.feed import DEPTH as SNAP_QUOTE
from backend.feed import INVALID_PARAMETERS, LTP, MAX_CAPACITY_REACHED, NOT_SUBSCRIBED, QUOTE

WATCHLIST, SCRIPT = "watchlist", "script"


def now_ms() -> int:
    return int(time.time() * 1000)


def loads(pool) -> list[int]:
    return [c.symbols for c in pool.get_stats().connections]


async def test_fill_first_balancing_capacity_and_slot_reuse(make_simulator, make_pool, symbols):
    simulator = await make_simulator(ticks_per_second=0.05)
    pool = make_pool(simulator)
    outcomes = await pool.subscribe_many(symbols(2500), QUOTE, WATCHLIST)
    assert all(o.ok for o in outcomes)
    assert loads(pool) == [1000, 1000, 500]
    assert [o.connection for o in outcomes[999:1001]] == [1, 2]
    assert sorted(c.token_count for c in simulator.connections) == [500, 1000, 1000]

    assert all(o.ok for o in await pool.subscribe_many(symbols(500, 2500), QUOTE, WATCHLIST))
    assert loads(pool) == [1000, 1000, 1000]
    (extra,) = symbols(1, 3000)
    refused = await pool.subscribe(*extra, QUOTE, WATCHLIST)
    assert not refused.ok and refused.code == MAX_CAPACITY_REACHED
    assert "3000/3000" in refused.message
    assert pool.get_stats().total_symbols == 3000

    freed = symbols(1, 1500)[0]
    assert (await pool.unsubscribe(*freed, QUOTE, WATCHLIST)).ok
    assert loads(pool) == [1000, 999, 1000]
    reused = await pool.subscribe(*extra, QUOTE, WATCHLIST)
    assert reused.ok and reused.connection == 2
    assert loads(pool) == [1000, 1000, 1000]
    stats = pool.get_stats()
    assert stats.peak_symbols == 3000 and stats.peak_connections == 3


async def test_pool_log_lines(make_simulator, make_pool, symbols, caplog):
    simulator = await make_simulator(ticks_per_second=0)
    pool = make_pool(simulator, max_symbols=200, max_connections=2)
    with caplog.at_level(logging.INFO, logger="feedpool.pool"):
        await pool.subscribe_many(symbols(401), LTP, WATCHLIST)
        await pool.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[POOL]")]
    assert "[POOL] Connection 1 started" in lines
    assert "[POOL] Connection 1: 100/200 symbols" in lines
    assert "[POOL] Connection 1 full: 200/200 symbols" in lines
    assert "[POOL] Opening connection 2: connection 1 is full (200/200)" in lines
    assert any(line.startswith("[POOL] Capacity exhausted: 400/400") for line in lines)
    assert "[POOL] Closed pool for simulator/TEST: peak 400 symbols on 2 connections" in lines


async def test_shared_symbol_keeps_ticking_when_one_holder_leaves(
    make_simulator, make_pool, symbols, bus
):
    simulator = await make_simulator(ticks_per_second=5)
    pool = make_pool(simulator)
    symbol, exchange = symbols(1)[0]
    topic = f"{exchange}_{symbol}_QUOTE"
    reader = bus(topic)
    assert (await pool.subscribe(symbol, exchange, QUOTE, WATCHLIST)).ok
    second = await pool.subscribe(symbol, exchange, QUOTE, SCRIPT)
    assert second.ok and second.connection == 1
    assert pool.get_stats().total_symbols == 1

    assert (await pool.unsubscribe(symbol, exchange, QUOTE, SCRIPT)).ok
    after = now_ms()
    await reader.ticks_after(after, {topic})
    assert pool.holds(WATCHLIST) == [(symbol, exchange, QUOTE)]

    assert not (await pool.unsubscribe(symbol, exchange, QUOTE, SCRIPT)).ok
    assert (await pool.unsubscribe(symbol, exchange, QUOTE, WATCHLIST)).ok
    assert pool.get_stats().total_symbols == 0
    assert (
        simulator.connection_holding(SmartStreamAdapter.key(pool.master.get(symbol, exchange)))
        is None
    )


async def test_mode_upgrade_and_downgrade_stay_on_one_connection(
    make_simulator, make_pool, symbols, bus
):
    simulator = await make_simulator(ticks_per_second=5)
    pool = make_pool(simulator)
    symbol, exchange = symbols(1)[0]
    instrument = pool.master.get(symbol, exchange)
    key = SmartStreamAdapter.key(instrument)
    reader = bus(f"{exchange}_{symbol}_")
    adapter = None

    assert (await pool.subscribe(symbol, exchange, LTP, WATCHLIST)).ok
    adapter = pool.adapters[0]
    assert adapter.held[key][1] == LTP

    since = now_ms()
    upgraded = await pool.subscribe(symbol, exchange, SNAP_QUOTE, SCRIPT)
    assert upgraded.ok and upgraded.connection == 1
    assert adapter.held[key][1] == SNAP_QUOTE
    assert pool.subscription_map == {(symbol, exchange, LTP): 1, (symbol, exchange, SNAP_QUOTE): 1}
    depth = await reader.ticks_after(since, {f"{exchange}_{symbol}_DEPTH"})
    assert len(next(iter(depth.values()))["depth"]["buy"]) == 5
    assert loads(pool) == [1]

    since = now_ms()
    assert (await pool.unsubscribe(symbol, exchange, SNAP_QUOTE, SCRIPT)).ok
    assert adapter.held[key][1] == LTP
    await reader.ticks_after(since, {f"{exchange}_{symbol}_LTP"})
    assert len(pool.adapters) == 1 and loads(pool) == [1]


async def test_dropped_connection_reconnects_and_every_symbol_ticks_again(
    make_simulator, make_pool, symbols, bus
):
    simulator = await make_simulator(ticks_per_second=0.2)
    pool = make_pool(simulator, max_symbols=100)
    wanted = symbols(250)
    await pool.subscribe_many(wanted, LTP, WATCHLIST)
    second = pool.adapters[1]
    held = list(second.held.values())
    assert len(held) == 100
    topics = {f"{i.exchange}_{i.symbol}_LTP" for i, _ in held}
    reader = bus("NSE", "BSE", "NFO", "MCX", "CDS", "SYS.HEALTH")
    states: list[str] = []
    await reader.joined()

    dropped_at = now_ms()
    connection = simulator.connection_holding(next(iter(second.held)))
    await simulator.drop(connection)

    ticked: set[str] = set()

    def reconnected_and_ticking(topic: str, payload: dict) -> bool:
        if topic == "SYS.HEALTH" and payload["connection"] == 2:
            states.append(payload["state"])
        elif topic in topics and payload["timestamp"] > dropped_at:
            ticked.add(topic)
        return "connected" in states and ticked == topics

    await reader.until(reconnected_and_ticking)
    assert states[0] == "reconnecting"
    assert loads(pool) == [100, 100, 50]
    assert len(second.held) == 100


async def test_broker_allowing_fewer_symbols_than_configured_loses_nothing(
    make_simulator, make_pool, symbols
):
    simulator = await make_simulator(ticks_per_second=0)
    pool = make_pool(simulator, max_symbols=1200)
    outcomes = await pool.subscribe_many(symbols(2500), LTP, WATCHLIST)
    assert all(o.ok for o in outcomes)
    assert loads(pool) == [1000, 1000, 500]
    assert sorted(c.token_count for c in simulator.connections) == [500, 1000, 1000]

    more = await pool.subscribe_many(symbols(600, 2500), LTP, WATCHLIST)
    accepted = [o for o in more if o.ok]
    refused = [o for o in more if not o.ok]
    assert len(accepted) == 500 and len(refused) == 100
    assert {o.code for o in refused} == {MAX_CAPACITY_REACHED}
    assert "3000/3000" in refused[0].message
    assert "Subscription Limit Exceeded" in refused[0].message
    assert pool.get_stats().total_symbols == 3000
    assert sum(c.token_count for c in simulator.connections) == 3000


async def test_broker_allowing_fewer_connections_than_configured(
    make_simulator, make_pool, symbols
):
    simulator = await make_simulator(ticks_per_second=0)
    pool = make_pool(simulator, max_symbols=100, max_connections=4)
    outcomes = await pool.subscribe_many(symbols(350), LTP, WATCHLIST)
    assert sum(o.ok for o in outcomes) == 300
    refused = [o for o in outcomes if not o.ok]
    assert {o.code for o in refused} == {MAX_CAPACITY_REACHED}
    assert "Connection Limit Exceeded" in refused[0].message
    assert loads(pool) == [100, 100, 100]


async def test_unknown_symbols_and_exchanges_are_named_and_the_rest_subscribe(
    make_simulator, make_pool, symbols
):
    simulator = await make_simulator(ticks_per_second=0)
    pool = make_pool(simulator)
    good = symbols(1)[0]
    outcomes = await pool.subscribe_many(
        [good, ("NOSUCHSYMBOL", "NSE"), ("SBIN", "NASDAQ")], QUOTE, WATCHLIST
    )
    assert [o.ok for o in outcomes] == [True, False, False]
    assert outcomes[1].code == outcomes[2].code == INVALID_PARAMETERS
    assert "NOSUCHSYMBOL" in outcomes[1].message
    assert "NASDAQ" in outcomes[2].message
    missing = await pool.unsubscribe("NOSUCHSYMBOL", "NSE", QUOTE, WATCHLIST)
    assert missing.code == NOT_SUBSCRIBED


async def test_dead_broker_is_a_clear_error_and_keeps_what_is_held(
    make_simulator, make_pool, symbols, unused_tcp_port
):
    pool = make_pool(None, url=f"ws://127.0.0.1:{unused_tcp_port}/smart-stream")
    outcome = await pool.subscribe(*symbols(1)[0], LTP, WATCHLIST)
    assert not outcome.ok and outcome.code == "BROKER_CONNECTION_ERROR"
    assert f"127.0.0.1:{unused_tcp_port}" in outcome.message

    simulator = await make_simulator(ticks_per_second=0)
    live = make_pool(simulator, max_symbols=10, max_connections=2)
    assert all(o.ok for o in await live.subscribe_many(symbols(10), LTP, WATCHLIST))
    await simulator.stop()
    refused = await live.subscribe(*symbols(1, 10)[0], LTP, WATCHLIST)
    assert not refused.ok and refused.code == "BROKER_CONNECTION_ERROR"
    assert live.get_stats().total_symbols == 10


async def test_credentials_never_reach_a_log_line(make_simulator, make_pool, symbols, caplog):
    simulator = await make_simulator(ticks_per_second=0)
    pool = make_pool(simulator, max_symbols=5)
    with caplog.at_level(logging.DEBUG):
        await pool.subscribe_many(symbols(12), LTP, WATCHLIST)
        await simulator.drop(simulator.connection_holding(next(iter(pool.adapters[0].held))))
        await pool.close()
    text = "\n".join(r.getMessage() for r in caplog.records)
    credentials = simulator.credentials
    for secret in (credentials.api_key, credentials.feed_token, credentials.auth_token):
        assert str(secret) not in text


async def test_symbols_a_reconnected_connection_cannot_take_back_move_elsewhere(
    make_simulator, make_pool, symbols
):
    simulator = await make_simulator(ticks_per_second=0)
    pool = make_pool(simulator, max_symbols=100, max_connections=2)
    wanted = symbols(100)
    await pool.subscribe_many(wanted, LTP, WATCHLIST)
    assert loads(pool) == [100]

    simulator.max_tokens = 60  # the broker now allows fewer tokens per connection
    await simulator.drop(simulator.connection_holding(next(iter(pool.adapters[0].held))))

    await eventually(lambda: loads(pool) == [60, 40])
    assert sorted(c.token_count for c in simulator.connections) == [40, 60]
    assert {(s, e) for s, e, _ in pool.holds(WATCHLIST)} == set(wanted)


async def test_a_stalled_broker_connection_holds_up_no_other(make_simulator, make_pool, symbols):
    simulator = await make_simulator(ticks_per_second=0)
    host, port = simulator.url.removeprefix("ws://").split("/")[0].split(":")
    relay = Relay(host, int(port))
    await relay.start()
    stalled_url = simulator.url.replace(f":{port}/", f":{relay.port}/")
    pool = make_pool(
        simulator,
        max_symbols=10,
        max_connections=2,
        url=lambda index: stalled_url if index == 1 else simulator.url,
    )
    try:
        first, second, late = symbols(10), symbols(10, 10), symbols(1, 20)
        assert all(o.ok for o in await pool.subscribe_many(first, LTP, WATCHLIST))
        assert all(o.ok for o in await pool.subscribe_many(second[:5], LTP, WATCHLIST))
        assert loads(pool) == [10, 5]

        relay.hold()  # connection 1's broker stops answering
        upgrade = asyncio.ensure_future(pool.subscribe(*first[0], QUOTE, SCRIPT))
        on_two = await asyncio.wait_for(pool.subscribe_many(late, LTP, WATCHLIST), 10)
        assert on_two[0].ok and on_two[0].connection == 2
        assert not upgrade.done(), "connection 1's request should still be waiting"
        freed = await asyncio.wait_for(pool.unsubscribe(*second[0], LTP, WATCHLIST), 10)
        assert freed.ok and not upgrade.done()

        relay.release()
        assert (await asyncio.wait_for(upgrade, 20)).ok
        assert loads(pool) == [10, 5]
    finally:
        await relay.stop()
