"""Dhan end to end: the official ``MarketFeed`` (dhanhq 2.3.0) against the Dhan simulator, the
simulator's handshake verdicts and connection limit, and the pool over Dhan: 5 connections x
5,000, a sixth connection opened elsewhere, an expired token, an account without Data APIs.

The official client runs its own event loop, so it runs in a thread; its feed URL is the
simulator's, set on its class as its documentation says, and nothing else of it is changed. It
reads one message at a time: FeedPool's decoder then reads the very same bytes.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import struct
import time
from collections.abc import Iterable
from urllib.parse import urlencode

import msgspec
import pytest
from dhanhq import DhanContext, MarketFeed
from proxy_client import Client, eventually, start_proxy
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from backend.brokers import BROKERS
from backend.brokers.dhan import protocol
from backend.brokers.dhan.adapter import DhanAdapter, DhanCredentials
from backend.brokers.dhan.login import DhanSession
from backend.bus.messages import TICK_TYPES, decode
from backend.feed import (
    CONNECTED,
    DEPTH,
    DOWN,
    LTP,
    MAX_CAPACITY_REACHED,
    QUOTE,
    SESSION_EXPIRED,
    TICK_FIELDS,
    tick_topic,
)
from backend.instruments.master import Instrument, InstrumentMaster
from backend.pool.connection_pool import ConnectionPool
from backend.runtime.settings import Settings
from backend.security.secret import Secret
from backend.simulator import ExchangeSimulator, SimulatorCredentials

CREDENTIALS = SimulatorCredentials()
DHAN = BROKERS["dhan"]
WAIT = 15.0
LIMIT = 5000
WATCHLIST = "watchlist"
IST = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
OFFICIAL_MODES = {"Ticker Data": LTP, "Quote Data": QUOTE, "Full Data": DEPTH}
#: What the official client sends after ``{"RequestCode": 12}``: the 83-byte binary header of
#: Dhan's first feed version (code 12, length 83, client ID, 50 zero bytes).
LEGACY_DISCONNECT = struct.pack("<bH30s50s", 12, 83, CREDENTIALS.client_code.encode(), b"")


def feed_url(simulator: ExchangeSimulator, token: str = CREDENTIALS.access_token, **query) -> str:
    """The feed URL the official client builds, with ``query`` changing its parameters."""
    values = {"version": "2", "token": token, "clientId": CREDENTIALS.client_code, "authType": "2"}
    return f"{simulator.url}?{urlencode({**values, **query})}"


def pairs(instruments: Iterable[Instrument]) -> list[tuple[str, str]]:
    return [(i.symbol, i.exchange) for i in instruments]


def plan(simulator: ExchangeSimulator) -> dict[int, list[Instrument]]:
    """Per FeedPool mode, one each of an NSE equity, an NFO option, a CDS future and an index."""
    every = list(simulator.instruments.values())

    def named(symbol: str, exchange: str) -> Instrument:
        return next(i for i in every if (i.symbol, i.exchange) == (symbol, exchange))

    options = sorted((i for i in every if i.exchange == "NFO" and i.symbol.endswith("CE")),
                     key=lambda i: i.symbol)  # fmt: skip
    futures = sorted((i for i in every if i.exchange == "CDS"), key=lambda i: i.symbol)
    return {
        mode: [
            named(("SBIN", "INFY", "TCS")[n], "NSE"),
            options[n * 10],
            futures[n],
            named(("NIFTY", "BANKNIFTY", "SENSEX")[n], ("NSE_INDEX", "NSE_INDEX", "BSE_INDEX")[n]),
        ]
        for n, mode in enumerate((LTP, QUOTE, DEPTH))
    }


def official_session(url: str, subscriptions: dict[int, list[Instrument]], ticks: int):
    """Run the official client on ``url`` until each subscription has ``ticks`` ticks: every
    message it read, with what its parser made of it."""
    wanted = {
        (protocol.REQUEST_CODES[mode], *DhanAdapter.key(i))
        for mode, instruments in subscriptions.items()
        for i in instruments
    }
    instruments = [(segment, str(security_id), code) for code, segment, security_id in wanted]
    feed = MarketFeed(DhanContext(CREDENTIALS.client_code, CREDENTIALS.access_token),
                      instruments, version="v2")  # fmt: skip
    feed.run_forever()
    received: list[tuple[bytes, object]] = []
    seen: dict[tuple, int] = {}
    codes = {"Ticker Data": 15, "Quote Data": 17, "Full Data": 21}
    try:
        while len(seen) < len(wanted) or min(seen.values()) < ticks:
            message = feed.loop.run_until_complete(asyncio.wait_for(feed.ws.recv(), WAIT))
            data = feed.process_data(message)
            received.append((message, data))
            if isinstance(data, dict) and data["type"] in codes:
                key = (codes[data["type"]], data["exchange_segment"], data["security_id"])
                seen[key] = seen.get(key, 0) + 1
    finally:
        feed.close_connection()
        feed.loop.close()
    return received


def ist_clock(epoch_ms: int) -> str:
    return datetime.datetime.fromtimestamp(epoch_ms / 1000, IST).strftime("%H:%M:%S")


def agree(official: dict, ours: dict, decimals: int) -> None:
    """The official client's tick and FeedPool's agree field for field; the official client
    shows prices to 2 decimals, FeedPool to the segment's step."""
    close_enough = 0.005 + 1e-9 if decimals == 4 else 0

    def price(theirs: str, mine: float) -> None:
        assert abs(float(theirs) - mine) <= close_enough, (theirs, mine, official, ours)

    price(official["LTP"], ours["ltp"])
    assert official["LTT"] == ist_clock(ours["ltt"])
    if ours["mode"] == LTP:
        return
    for name in ("open", "high", "low"):
        price(official[name], ours[name])
    price(official["avg_price"], ours["average_price"])
    assert ours["avg_trade_price"] == ours["average_price"]
    assert official["close"] == "0.00"  # the day's close, sent only after the market closes
    assert ours["last_trade_quantity"] == official["LTQ"]
    assert ours["volume"] == official["volume"]
    assert ours["total_buy_quantity"] == official["total_buy_quantity"]
    assert ours["total_sell_quantity"] == official["total_sell_quantity"]
    if ours["mode"] == QUOTE:
        return
    assert ours["oi"] == official["OI"]
    for level, mine_buy, mine_sell in zip(official["depth"], *ours["depth"].values(), strict=True):
        price(level["bid_price"], mine_buy["price"])
        price(level["ask_price"], mine_sell["price"])
        assert (mine_buy["quantity"], mine_buy["orders"]) == (
            level["bid_quantity"],
            level["bid_orders"],
        )
        assert (mine_sell["quantity"], mine_sell["orders"]) == (
            level["ask_quantity"],
            level["ask_orders"],
        )


# 1. The official client


async def test_the_official_client_streams_every_mode_and_agrees_with_feedpool(
    make_simulator, monkeypatch
):
    simulator = await make_simulator(broker="dhan", ticks_per_second=20, max_tokens=None)
    monkeypatch.setattr(MarketFeed, "market_feed_wss", simulator.url)
    subscriptions = plan(simulator)
    by_key = {DhanAdapter.key(i): i for instruments in subscriptions.values() for i in instruments}
    modes = {DhanAdapter.key(i): mode for mode, found in subscriptions.items() for i in found}

    received = await asyncio.to_thread(official_session, simulator.url, subscriptions, 3)

    closes: dict[tuple[int, int], float] = {}
    checked: dict[int, int] = {}
    for message, official in received:
        assert isinstance(message, bytes), "the feed sends binary messages only"
        assert protocol.check(message) and len(message) == message[1] | message[2] << 8
        key = (message[3], int.from_bytes(message[4:8], "little"))
        instrument = by_key[key]
        decimals = 4 if instrument.exchange == "CDS" else 2
        if official["type"] == "Previous Close":
            closes[key] = protocol.previous_close(message)
            assert abs(float(official["prev_close"]) - closes[key]) <= 0.005
            continue
        if official["type"] == "OI Data":  # after a derivative's quote: FeedPool has no field
            assert modes[key] == QUOTE and instrument.exchange in ("NFO", "CDS")
            continue
        mode = OFFICIAL_MODES[official["type"]]
        assert mode == modes[key]
        assert key in closes, "each subscription's previous close comes before its ticks"
        ours = protocol.normalise(message, instrument.symbol, instrument.exchange, 0, closes[key])
        assert list(ours) == list(TICK_FIELDS[mode])
        agree(official, ours, decimals)
        if mode != LTP:
            assert ours["close"] == round(closes[key], decimals) > 0
        checked[mode] = checked.get(mode, 0) + 1
    assert all(checked[mode] >= 4 * 3 for mode in (LTP, QUOTE, DEPTH)), checked


async def test_the_official_clients_disconnect_and_unsubscribe_are_served(make_simulator):
    """``{"RequestCode": 12}`` then the 83-byte binary header closes the connection; an
    unsubscribe the official way (the subscribe code + 1) stops the ticks."""
    simulator = await make_simulator(broker="dhan", ticks_per_second=0, max_tokens=None)
    sbin = next(i for i in simulator.instruments.values() if i.symbol == "SBIN")
    key = DhanAdapter.key(sbin)
    async with connect(feed_url(simulator)) as ws:
        for code in (15, 17):
            await ws.send(protocol.subscription_request(code, [key]))
        await eventually(lambda: simulator.connections and simulator.connections[0].tokens)
        await ws.send(protocol.subscription_request(16, [key]))
        await ws.send(protocol.subscription_request(18, [key]))
        await eventually(lambda: not simulator.connections[0].tokens)
        await ws.send(protocol.disconnect_request())
        await ws.send(LEGACY_DISCONNECT)
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(WAIT):
                while True:
                    assert isinstance(await ws.recv(), bytes)
    await eventually(lambda: not simulator.connections)


# 2. The simulator's verdicts and its connection limit


async def verdict(simulator: ExchangeSimulator, url: str) -> int:
    """The reason of the disconnect packet the simulator answers a connection with."""
    async with connect(url) as ws:
        packet = await asyncio.wait_for(ws.recv(), WAIT)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), WAIT)
    assert protocol.check(packet) == protocol.DISCONNECT_CODE
    return protocol.disconnect_reason(packet)


async def test_bad_credentials_are_refused_after_the_upgrade_with_dhans_reasons(
    make_simulator, caplog
):
    simulator = await make_simulator(broker="dhan", max_tokens=None)
    with caplog.at_level(logging.DEBUG, logger="feedpool.simulator"):
        assert await verdict(simulator, feed_url(simulator, clientId="1000000009")) == 808
        assert await verdict(simulator, feed_url(simulator, token="not-a-token")) == 809
        await simulator.expire_sessions()
        assert await verdict(simulator, feed_url(simulator)) == 807
        simulator.logins.data_apis = False
        good = simulator.logins.consume(simulator.logins.log_in(simulator.logins.consent()))
        assert await verdict(simulator, feed_url(simulator, token=good)) == 806
    assert all(CREDENTIALS.access_token not in r.getMessage() for r in caplog.records)


async def test_another_version_is_refused_at_the_upgrade(make_simulator):
    simulator = await make_simulator(broker="dhan", max_tokens=None)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(feed_url(simulator, version="1")):
            pass
    assert refused.value.response.status_code == 400
    assert b"version=2" in refused.value.response.body


async def test_a_sixth_connection_closes_the_oldest_with_805(make_simulator):
    simulator = await make_simulator(broker="dhan", max_tokens=None)
    opened = [await connect(feed_url(simulator)) for _ in range(5)]
    await eventually(lambda: len(simulator.connections) == 5)
    first = simulator.connections[0].id
    sixth = await connect(feed_url(simulator))
    packet = await asyncio.wait_for(opened[0].recv(), WAIT)
    assert protocol.disconnect_reason(packet) == protocol.TOO_MANY_CONNECTIONS
    await eventually(lambda: first not in [c.id for c in simulator.connections])
    assert len(simulator.connections) == 5
    for ws in (*opened, sixth):
        await ws.close()


# 3. The pool over Dhan


def dhan_pool(
    simulator: ExchangeSimulator, publisher, max_symbols: int = LIMIT, session=None
) -> ConnectionPool:
    """A pool on ``simulator`` with Dhan's limits; the adapters open with ``session`` (default:
    the simulator's fixed token)."""
    credentials = session or DHAN.simulator_credentials(simulator.credentials)

    def adapter(index: int) -> DhanAdapter:
        return DhanAdapter(
            index, simulator.url, credentials, reconnect_first_delay=0.05, reconnect_max_delay=0.5
        )

    return ConnectionPool(
        "dhan",
        "TEST",
        InstrumentMaster(simulator.instruments.values()),
        adapter,
        publisher,
        max_symbols_per_connection=max_symbols,
        max_connections=DHAN.max_connections,
        session=session,
    )


@pytest.fixture
async def pools():
    made: list[ConnectionPool] = []
    yield made.append
    for pool in made:
        await pool.close()


async def test_the_pool_holds_25000_symbols_on_five_connections(make_simulator, publisher, pools):
    simulator = await make_simulator(broker="dhan", ticks_per_second=0, max_tokens=None)
    pool = dhan_pool(simulator, publisher)
    pools(pool)
    everything = list(simulator.instruments.values())

    outcomes = await pool.subscribe_many(pairs(everything[: 5 * LIMIT]), LTP, WATCHLIST)

    assert all(o.ok for o in outcomes)
    assert [c.symbols for c in pool.get_stats().connections] == [LIMIT] * 5
    # Dhan answers no request: the broker holds them once it has read them, and ticks each.
    await eventually(lambda: [c.token_count for c in simulator.connections] == [LIMIT] * 5, WAIT)
    await eventually(lambda: [a.ticks_received for a in pool.adapters] == [LIMIT] * 5, WAIT)
    extra = everything[5 * LIMIT]
    refused = await pool.subscribe(extra.symbol, extra.exchange, LTP, WATCHLIST)
    assert not refused.ok and refused.code == MAX_CAPACITY_REACHED
    assert "25000/25000" in refused.message
    assert [c.token_count for c in simulator.connections] == [LIMIT] * 5


async def test_a_sixth_connection_elsewhere_moves_the_oldests_symbols_and_loses_none(
    make_simulator, publisher, pools, caplog
):
    """Another program of the trader's opens a connection: Dhan closes the account's oldest
    (the pool's first) with 805; the pool believes it and places its symbols on the others."""
    simulator = await make_simulator(broker="dhan", ticks_per_second=0, max_tokens=None)
    pool = dhan_pool(simulator, publisher, max_symbols=10)
    pools(pool)
    everything = list(simulator.instruments.values())
    assert all(o.ok for o in await pool.subscribe_many(pairs(everything[:41]), QUOTE, WATCHLIST))
    # Room for what connection 1 holds: connection 2 lets go of its ten.
    freed = [(i.symbol, i.exchange, QUOTE) for i in everything[10:20]]
    assert all(o.ok for o in await pool.unsubscribe_many(freed, WATCHLIST))
    held = set(pairs(everything[:10] + everything[20:41]))
    assert [c.symbols for c in pool.get_stats().connections] == [10, 0, 10, 10, 1]

    with caplog.at_level(logging.INFO):
        async with connect(feed_url(simulator)):  # the trader's other program
            first = pool.adapters[0]
            await eventually(lambda: first.state == DOWN, WAIT)
            await eventually(lambda: pool.get_stats().connections[1].symbols == 10, WAIT)

    assert "805" in first.state_reason and "another connection" in first.state_reason
    stats = pool.get_stats()
    assert [c.symbols for c in stats.connections] == [0, 10, 10, 10, 1]
    assert stats.connections[0].capacity == 0
    assert {(s, e) for s, e, _ in pool.subscription_map} == held
    keys = {DhanAdapter.key(i) for i in everything[:10] + everything[20:41]}
    await eventually(lambda: {k for c in simulator.connections for k in c.tokens} == keys)
    assert not [r for r in caplog.records if "Lost" in r.getMessage()]
    # The first connection dials no more: connection 5's room is all there is.
    assert all(o.ok for o in await pool.subscribe_many(pairs(everything[41:50]), QUOTE, WATCHLIST))
    more = await pool.subscribe(everything[50].symbol, everything[50].exchange, QUOTE, WATCHLIST)
    assert more.code == MAX_CAPACITY_REACHED and "805" in more.message
    assert len(simulator.connections) == 4


async def test_an_expired_token_is_session_expired_with_dhans_reason(
    make_simulator, publisher, pools, caplog
):
    simulator = await make_simulator(broker="dhan", ticks_per_second=0, max_tokens=None)
    values = Settings().replace(
        BROKER="dhan", **DHAN.simulator_settings(simulator.credentials, simulator.rest_url)
    )
    session = DhanSession(
        values.DHAN_API_URL, values.DHAN_CLIENT_ID, values.DHAN_ACCESS_TOKEN,
        first_delay=0.01, max_delay=0.02,
    )  # fmt: skip
    await session.begin()
    pool = dhan_pool(simulator, publisher, session=session)
    pools(pool)
    assert (await pool.subscribe("SBIN", "NSE", QUOTE, WATCHLIST)).ok
    adapter = pool.adapters[0]
    await eventually(lambda: adapter.state == CONNECTED)

    with caplog.at_level(logging.INFO, logger="feedpool.simulator"):
        await simulator.expire_sessions()  # Dhan sends 807 on the open connection
        await eventually(lambda: adapter.state == SESSION_EXPIRED and session.problem, WAIT)

    dialled = [r for r in caplog.records if "accepted for" in r.getMessage()]
    assert dialled == [], "the connection dialled again with the token Dhan refused"
    reason = adapter.state_reason
    assert "Access token is expired (807)" in reason
    assert "Dhan refused to renew the access token" in reason and "DHAN_ACCESS_TOKEN" in reason
    assert not session.can_renew  # refused for its settings: not tried again
    assert pool.get_stats().session_problem == session.problem
    assert CREDENTIALS.access_token not in reason
    await session.close()


async def test_an_account_without_data_apis_is_a_clear_permanent_error(
    make_simulator, publisher, pools, caplog
):
    simulator = await make_simulator(broker="dhan", ticks_per_second=0, max_tokens=None)
    simulator.logins.data_apis = False
    pool = dhan_pool(simulator, publisher)
    pools(pool)
    advice = "subscribe to Dhan's Data APIs"
    with caplog.at_level(logging.INFO, logger="feedpool.simulator"):
        first = await pool.subscribe("SBIN", "NSE", QUOTE, WATCHLIST)
        adapter = pool.adapters[0]
        await eventually(lambda: adapter.state == SESSION_EXPIRED, WAIT)

        refused = await pool.subscribe("INFY", "NSE", QUOTE, WATCHLIST)

    # Dhan's verdict may come before the connection's open returns, or after its first request.
    assert first.ok or advice in first.message
    assert advice in adapter.state_reason and "(806)" in adapter.state_reason
    assert not refused.ok and advice in refused.message
    accepted = [r for r in caplog.records if "accepted for" in r.getMessage()]
    assert len(accepted) == 1, "the connection dialled again"
    assert adapter.withdrawn is not None and not simulator.connections


async def test_an_openalgo_client_gets_every_modes_fields_and_the_previous_close(
    make_simulator, publisher, pools
):
    """The client API's client, as for the other brokers: each mode's tick has exactly that
    mode's fields, of their types (``backend.bus.messages``), and a Quote's close is Dhan's
    previous close."""
    simulator = await make_simulator(broker="dhan", ticks_per_second=5, max_tokens=None)
    pool = dhan_pool(simulator, publisher)
    pools(pool)
    proxy = await start_proxy(pool)
    client = await Client.open(proxy.url)
    try:
        subscriptions = plan(simulator)
        for mode, instruments in subscriptions.items():
            assert (await client.subscribe(pairs(instruments), mode=mode))["status"] == "success"
        wanted = {
            (i.symbol, i.exchange, mode) for mode, found in subscriptions.items() for i in found
        }
        ticks: dict[tuple[str, str, int], dict] = {}
        async with asyncio.timeout(WAIT):
            while set(ticks) != wanted:
                message = await client.ticks.get()
                data = message["data"]
                ticks[data["symbol"], data["exchange"], data["mode"]] = data
    finally:
        await client.close()
        await proxy.close()

    for (symbol, exchange, mode), data in ticks.items():
        typed = decode(tick_topic(exchange, symbol, mode), msgspec.json.encode(data))
        assert type(typed) is TICK_TYPES[mode] and msgspec.to_builtins(typed) == data
        assert list(data) == list(TICK_FIELDS[mode])
        assert abs(data["ltt"] - time.time() * 1000) < 60_000
        if mode != LTP:
            assert data["close"] > 0 and 0.7 * data["close"] <= data["ltp"] <= 1.3 * data["close"]


async def test_no_credential_reaches_a_log_line_or_an_error(make_simulator, caplog):
    simulator = await make_simulator(broker="dhan", max_tokens=None)
    credentials = DhanCredentials(CREDENTIALS.client_code, Secret(CREDENTIALS.access_token))
    with caplog.at_level(logging.DEBUG):
        await DhanAdapter.check(simulator.url, credentials)
        adapter = DhanAdapter(1, simulator.url, credentials)
        await adapter.connect()
        await adapter.close()
    assert caplog.records
    assert not [r for r in caplog.records if CREDENTIALS.access_token in r.getMessage()]
    assert simulator.url in adapter.shown_url and "token" not in adapter.shown_url
