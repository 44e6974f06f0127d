"""Zerodha Kite end to end: the official KiteTicker client against the Kite simulator, Kite's
handshake and instrument limits, the pool over Kite, and the bus ticks of either broker.

The official client runs on Twisted, whose reactor cannot be restarted in one process, so it runs
in a child process of its own that prints every binary message it receives (as hex) beside the
ticks its ``on_ticks`` got for it; FeedPool's decoder then reads the very same bytes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Iterable
from urllib.parse import urlencode

import pytest
from kiteconnect import KiteTicker
from proxy_client import eventually
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from backend.brokers.errors import BrokerConnectionError, ConnectionLimitError
from backend.brokers.zerodha import protocol
from backend.brokers.zerodha.adapter import KiteAdapter, KiteCredentials
from backend.feed import CONNECTED, DEPTH, LTP, MAX_CAPACITY_REACHED, QUOTE, TICK_FIELDS, tick_topic
from backend.instruments.master import Instrument
from backend.security.secret import Secret
from backend.simulator import ExchangeSimulator, SimulatorCredentials

CREDENTIALS = SimulatorCredentials()
WAIT = 15.0
KITE_LIMIT = 3000
WATCHLIST = "watchlist"
OFFICIAL_MODES = {
    KiteTicker.MODE_LTP: LTP,
    KiteTicker.MODE_QUOTE: QUOTE,
    KiteTicker.MODE_FULL: DEPTH,
}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def kite_url(
    simulator: ExchangeSimulator,
    api_key: str | None = CREDENTIALS.api_key,
    access_token: str | None = CREDENTIALS.access_token,
) -> str:
    """The KiteTicker URL with the query the official client builds (a value None is left out)."""
    query = {"api_key": api_key, "access_token": access_token}
    return simulator.url + "?" + urlencode({k: v for k, v in query.items() if v is not None})


def raw_client(simulator: ExchangeSimulator, **credentials: str | None) -> connect:
    return connect(kite_url(simulator, **credentials), compression=None, max_size=2**22)


def instrument(simulator: ExchangeSimulator, symbol: str, exchange: str) -> Instrument:
    return next(
        i for i in simulator.instruments.values() if (i.symbol, i.exchange) == (symbol, exchange)
    )


def plan(simulator: ExchangeSimulator) -> dict[int, list[Instrument]]:
    """Per FeedPool mode, one each of an NSE equity, an NFO option, a CDS future and an index.

    Chosen by symbol, so both brokers' simulators give the same symbols.
    """
    every = list(simulator.instruments.values())
    options = sorted(
        (i for i in every if i.exchange == "NFO" and i.symbol.endswith("CE")),
        key=lambda i: i.symbol,
    )
    futures = sorted((i for i in every if i.exchange == "CDS"), key=lambda i: i.symbol)
    equities = ["SBIN", "INFY", "RELIANCE"]
    indices = ["NIFTY", "BANKNIFTY", "FINNIFTY"]
    return {
        mode: [
            instrument(simulator, equities[n], "NSE"),
            options[n * 10],
            futures[n],
            instrument(simulator, indices[n], "NSE_INDEX"),
        ]
        for n, mode in enumerate((LTP, QUOTE, DEPTH))
    }


def epoch_seconds(moment) -> int:
    """The official client's time (a naive local datetime, or its epoch in the child's JSON)."""
    if isinstance(moment, dict):
        return round(moment["epoch"])
    return round(moment.timestamp())


def check_plausible(tick: dict, reference: Instrument) -> None:
    """An official tick looks like the simulated market around the instrument's price."""
    price = tick["last_price"]
    if reference.price:
        assert 0.7 * reference.price <= price <= 1.3 * reference.price, (tick, reference)
    else:
        assert price > 0
    if tick["mode"] == KiteTicker.MODE_LTP:
        return
    ohlc = tick["ohlc"]
    assert ohlc["low"] <= price <= ohlc["high"]
    assert ohlc["low"] <= ohlc["open"] <= ohlc["high"]
    assert ohlc["close"] > 0
    if not tick["tradable"]:
        return
    assert tick["volume_traded"] > 0 and tick["last_traded_quantity"] > 0
    assert ohlc["low"] <= tick["average_traded_price"] <= ohlc["high"]
    if tick["mode"] == KiteTicker.MODE_FULL:
        buy, sell = tick["depth"]["buy"], tick["depth"]["sell"]
        assert len(buy) == len(sell) == 5
        assert [b["price"] for b in buy] == sorted((b["price"] for b in buy), reverse=True)
        assert [s["price"] for s in sell] == sorted(s["price"] for s in sell)
        assert buy[0]["price"] < sell[0]["price"]
        assert all(level["quantity"] > 0 and level["orders"] > 0 for level in buy + sell)
        assert abs(epoch_seconds(tick["exchange_timestamp"]) * 1000 - now_ms()) < 120_000


def agree(official: dict, packet: bytes, reference: Instrument) -> dict:
    """The official client's tick and FeedPool's for the same packet agree field for field."""
    received = now_ms()
    ours = protocol.normalise(packet, reference.symbol, reference.exchange, received)
    assert official["instrument_token"] == int(reference.token)
    assert ours["mode"] == OFFICIAL_MODES[official["mode"]]
    assert set(ours) == set(TICK_FIELDS[ours["mode"]])
    assert (ours["symbol"], ours["exchange"]) == (reference.symbol, reference.exchange)
    assert ours["ltp"] == official["last_price"]
    if official["mode"] == KiteTicker.MODE_LTP:
        assert ours["timestamp"] == ours["ltt"] == received
        return ours
    ohlc = official["ohlc"]
    assert (ours["open"], ours["high"], ours["low"], ours["close"]) == (
        ohlc["open"],
        ohlc["high"],
        ohlc["low"],
        ohlc["close"],
    )
    # The official "change" is the percentage change; FeedPool rounds it to 2 places, so they
    # differ by up to half a hundredth, and by a float's error more at an exact half.
    assert ours["change_percent"] == pytest.approx(official["change"], abs=0.005 + 1e-9)
    assert ours["change"] == pytest.approx(official["last_price"] - ohlc["close"], abs=1e-4)
    if official["tradable"]:
        assert ours["last_trade_quantity"] == official["last_traded_quantity"]
        assert ours["average_price"] == ours["avg_trade_price"] == official["average_traded_price"]
        assert ours["volume"] == official["volume_traded"]
        assert ours["total_buy_quantity"] == official["total_buy_quantity"]
        assert ours["total_sell_quantity"] == official["total_sell_quantity"]
    else:  # an index: no trade fields on the wire
        assert (ours["volume"], ours["last_trade_quantity"], ours["average_price"]) == (0, 0, 0)
    if official["mode"] == KiteTicker.MODE_QUOTE:
        assert ours["timestamp"] == ours["ltt"] == received
        return ours
    assert ours["timestamp"] == epoch_seconds(official["exchange_timestamp"]) * 1000
    assert (ours["upper_circuit"], ours["lower_circuit"]) == (0.0, 0.0)
    if official["tradable"]:
        assert ours["ltt"] == epoch_seconds(official["last_trade_time"]) * 1000
        assert ours["oi"] == official["oi"]
        assert ours["depth"] == official["depth"]
    else:
        assert ours["ltt"] == ours["timestamp"]
        assert ours["oi"] == 0
        empty = [{"price": 0.0, "quantity": 0, "orders": 0}] * 5
        assert ours["depth"] == {"buy": empty, "sell": empty}
    return ours


def requests_for(subscriptions: dict[int, list[Instrument]]) -> list[str]:
    """What the official client sends for ``subscriptions``: one subscribe, then the modes."""
    tokens = [int(i.token) for instruments in subscriptions.values() for i in instruments]
    texts = [json.dumps({"a": "subscribe", "v": tokens})]
    for mode, instruments in subscriptions.items():
        if mode != QUOTE:
            kite_mode = protocol.KITE_MODES[mode]
            texts.append(
                json.dumps({"a": "mode", "v": [kite_mode, [int(i.token) for i in instruments]]})
            )
    return texts


# 1. The official client


OFFICIAL_CLIENT = r"""
import json, sys
from datetime import datetime
from kiteconnect import KiteTicker
from twisted.internet import reactor

root, api_key, access_token, plan, repeats, deadline = sys.argv[1:]
plan, repeats, deadline = json.loads(plan), int(repeats), float(deadline)
wanted = {(mode, token) for mode, tokens in plan.items() for token in tokens}
seen = {}
frame = [b""]
ticker = KiteTicker(api_key, access_token, root=root)


def emit(event):
    def default(value):
        if isinstance(value, datetime):
            return {"epoch": value.timestamp()}
        return repr(value)
    print(json.dumps(event, default=default), flush=True)


def on_connect(ws, response):
    emit({"event": "connect", "peer": str(response.peer)})
    ws.subscribe([token for tokens in plan.values() for token in tokens])
    for mode, tokens in plan.items():
        if mode != ws.MODE_QUOTE:
            ws.set_mode(mode, tokens)


def on_message(ws, payload, is_binary):
    if is_binary:
        frame[0] = payload


def on_ticks(ws, ticks):
    emit({"event": "ticks", "frame": frame[0].hex(), "ticks": ticks})
    for tick in ticks:
        key = (tick["mode"], tick["instrument_token"])
        if key in wanted:
            seen[key] = seen.get(key, 0) + 1
    if len(seen) == len(wanted) and min(seen.values()) >= repeats and ws.is_connected():
        ws.close()


def on_error(ws, code, reason):
    emit({"event": "error", "code": code, "reason": str(reason)})


def on_close(ws, code, reason):
    emit({"event": "close", "code": code})
    ws.stop()


def give_up():
    emit({"event": "timeout", "seen": sorted(map(list, seen))})
    reactor.stop()


ticker.on_connect, ticker.on_message, ticker.on_ticks = on_connect, on_message, on_ticks
ticker.on_error, ticker.on_close = on_error, on_close
reactor.callLater(deadline, give_up)
ticker.connect()
emit({"event": "exit"})
"""


async def run_official_client(
    simulator: ExchangeSimulator, subscriptions: dict[str, list[int]], repeats: int
) -> list[dict]:
    """Run the official KiteTicker in a child process until it has seen every (mode, token)
    ``repeats`` times; its events, in order."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        OFFICIAL_CLIENT,
        simulator.url,
        CREDENTIALS.api_key,
        CREDENTIALS.access_token,
        json.dumps(subscriptions),
        str(repeats),
        str(WAIT),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(WAIT + 5):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode(errors="replace")
    return [json.loads(line) for line in out.decode().splitlines()]


async def test_the_official_kiteticker_streams_every_mode_and_agrees_with_feedpool(
    make_simulator,
):
    simulator = await make_simulator(broker="zerodha", ticks_per_second=5, max_tokens=None)
    subscriptions = plan(simulator)
    by_token = {int(i.token): i for instruments in subscriptions.values() for i in instruments}
    wanted = {
        protocol.KITE_MODES[mode]: [int(i.token) for i in instruments]
        for mode, instruments in subscriptions.items()
    }

    events = await run_official_client(simulator, wanted, repeats=2)

    kinds = [e["event"] for e in events]
    assert kinds[0] == "connect" and kinds[-2:] == ["close", "exit"], kinds
    assert "timeout" not in kinds and "error" not in kinds, events
    seen: dict[tuple[str, int], int] = {}
    for event in events:
        if event["event"] != "ticks":
            continue
        packets = protocol.split(bytes.fromhex(event["frame"]))
        assert len(packets) == len(event["ticks"]) > 0
        for official, packet in zip(event["ticks"], packets, strict=True):
            reference = by_token[official["instrument_token"]]
            check_plausible(official, reference)
            agree(official, packet, reference)
            key = (official["mode"], official["instrument_token"])
            seen[key] = seen.get(key, 0) + 1
    final = {(mode, token) for mode, tokens in wanted.items() for token in tokens}
    assert final <= seen.keys()
    assert all(seen[key] >= 2 for key in final)
    # Every token first streams in quote mode (a new subscription's), then in the mode set.
    assert {key for key in seen if key not in final} <= {("quote", t) for t in by_token}
    assert {mode for mode, _ in seen} == {"ltp", "quote", "full"}


async def test_feedpool_decodes_the_simulators_frames_as_the_official_parser_does(
    make_simulator,
):
    simulator = await make_simulator(broker="zerodha", ticks_per_second=5, max_tokens=None)
    subscriptions = plan(simulator)
    by_token = {int(i.token): i for instruments in subscriptions.values() for i in instruments}
    final = {
        (protocol.KITE_MODES[mode], int(i.token))
        for mode, instruments in subscriptions.items()
        for i in instruments
    }
    parser = KiteTicker(CREDENTIALS.api_key, CREDENTIALS.access_token)
    seen: dict[tuple[str, int], int] = {}
    heartbeats = 0
    async with raw_client(simulator) as ws:
        for text in requests_for(subscriptions):
            await ws.send(text)
        async with asyncio.timeout(WAIT):
            while not heartbeats or not all(seen.get(key, 0) >= 3 for key in final):
                message = await ws.recv()
                assert isinstance(message, bytes), message
                official = parser._parse_binary(message)
                packets = protocol.split(message)
                if len(message) == 1:
                    heartbeats += 1
                    assert packets == [] and official == []
                    continue
                assert len(official) == len(packets) > 0
                for tick, packet in zip(official, packets, strict=True):
                    reference = by_token[tick["instrument_token"]]
                    check_plausible(tick, reference)
                    agree(tick, packet, reference)
                    key = (tick["mode"], tick["instrument_token"])
                    seen[key] = seen.get(key, 0) + 1
        assert simulator.connections[0].token_count == len(by_token) == 12
    assert {mode for mode, _ in seen} == {"ltp", "quote", "full"}


# 2. Handshake refusals


async def test_bad_credentials_get_403_and_a_fourth_connection_gets_429(make_simulator):
    simulator = await make_simulator(broker="zerodha", ticks_per_second=0, max_tokens=None)
    bad = [
        {"access_token": "wrong-access-token"},
        {"api_key": "wrong-api-key"},
        {"access_token": None},
        {"api_key": None, "access_token": None},
    ]
    for credentials in bad:
        with pytest.raises(InvalidStatus) as refused:
            async with raw_client(simulator, **credentials):
                pass
        assert refused.value.response.status_code == 403, credentials
        assert "api_key" in refused.value.response.headers["x-error-message"]
    wrong = KiteCredentials(Secret(CREDENTIALS.api_key), Secret("wrong-access-token"))
    with pytest.raises(BrokerConnectionError, match="HTTP 403") as refused_by_feedpool:
        await KiteAdapter.check(simulator.url, wrong)
    assert not isinstance(refused_by_feedpool.value, ConnectionLimitError)
    assert "wrong-access-token" not in str(refused_by_feedpool.value)
    assert simulator.connections == []

    good = KiteCredentials(Secret(CREDENTIALS.api_key), Secret(CREDENTIALS.access_token))
    opened = [await connect(kite_url(simulator)) for _ in range(3)]
    try:
        await eventually(lambda: len(simulator.connections) == 3)
        with pytest.raises(InvalidStatus) as refused:
            async with raw_client(simulator):
                pass
        assert refused.value.response.status_code == 429
        with pytest.raises(ConnectionLimitError, match="HTTP 429"):
            await KiteAdapter.open(simulator.url, good, "a 4th connection")
        assert len(simulator.connections) == 3
        # The three held connections still work: each gets its snapshot (past any heartbeat).
        sbin = int(instrument(simulator, "SBIN", "NSE").token)
        for ws in opened:
            await ws.send(protocol.subscribe_request([sbin]))
            packets: list[bytes] = []
            async with asyncio.timeout(WAIT):
                while not packets:
                    packets = protocol.split(await ws.recv())
            assert [protocol.token_and_mode(p) for p in packets] == [(sbin, QUOTE)]
        # Closing one frees its slot.
        await opened.pop().close()
        opened.append(await KiteAdapter.open(simulator.url, good, "a connection"))
        assert len(opened) == 3
    finally:
        for ws in opened:
            await ws.close()


# 3. The 3,000-instrument limit on one connection


async def test_past_3000_instruments_an_error_frame_and_the_held_keep_ticking(make_simulator):
    simulator = await make_simulator(broker="zerodha", ticks_per_second=2, max_tokens=None)
    tokens = [int(i.token) for i in simulator.instruments.values()][: KITE_LIMIT + 10]
    first, fitting, over = tokens[: KITE_LIMIT - 10], tokens[-20:-10], tokens[-10:]
    sample = set(first[::150])  # 20 tokens spread over the first subscriptions
    parser = KiteTicker(CREDENTIALS.api_key, CREDENTIALS.access_token)
    errors: list[tuple[int, str]] = []
    parser.on_error = lambda ws, code, reason: errors.append((code, reason))

    def token_of(packet: bytes) -> int:
        return protocol.token_and_mode(packet)[0]

    async with raw_client(simulator) as ws:
        for start in range(0, len(first), 500):
            await ws.send(protocol.subscribe_request(first[start : start + 500]))
        pending = set(first)
        async with asyncio.timeout(WAIT):
            while pending:
                message = await ws.recv()
                assert isinstance(message, bytes), message
                pending.difference_update(map(token_of, protocol.split(message)))

        await ws.send(protocol.subscribe_request(fitting + over))
        after_error: set[int] = set()
        error_text = None
        async with asyncio.timeout(WAIT):
            while error_text is None or not (sample | set(fitting)) <= after_error:
                message = await ws.recv()
                if isinstance(message, str):
                    assert error_text is None, message
                    error_text = message
                    continue
                ticked = set(map(token_of, protocol.split(message)))
                assert not ticked & set(over), "a token past the limit got a tick"
                if error_text is not None:
                    after_error |= ticked
        kind, data = protocol.parse_text(error_text)
        assert kind == "error"
        assert "3000 instruments per connection" in data and "10 of 20 not subscribed" in data
        parser._parse_text_message(error_text)
        assert errors == [(0, data)]
        (held,) = simulator.connections
        assert held.token_count == KITE_LIMIT
        assert held.tokens == frozenset(first + fitting)


# A product bug the pool tests run into


async def test_the_kite_simulator_streams_instruments_with_large_lots(make_simulator):
    """Every Kite quantity field is a uint32: instruments whose lots are large (IDEA 74,000,
    YESBANK 31,500, JPYINR 100,000) still stream full packets, their figures kept in range by
    the market (``tests/test_simulator_market.py``), and the connection stays up for the rest.
    """
    simulator = await make_simulator(broker="zerodha", ticks_per_second=0, max_tokens=None)
    large = [i for i in simulator.instruments.values() if i.lot_size * 200_000 >= 2**32]
    assert {i.symbol for i in large} >= {"IDEA29DEC26FUT", "YESBANK26JAN27FUT"}
    sbin = int(instrument(simulator, "SBIN", "NSE").token)
    tokens = [sbin, *(int(i.token) for i in large)]
    seen: set[int] = set()
    async with raw_client(simulator) as ws:
        await ws.send(protocol.subscribe_request(tokens))
        await ws.send(protocol.mode_request("full", tokens))
        try:
            async with asyncio.timeout(WAIT):
                while seen != set(tokens):
                    message = await ws.recv()
                    for packet in protocol.split(message):
                        token, mode = protocol.token_and_mode(packet)
                        if mode == DEPTH:
                            seen.add(token)
        except ConnectionClosed:
            pass
        assert seen == set(tokens), (
            f"the Kite simulator closed the connection (code {ws.close_code}) instead of sending "
            f"full packets for {len(set(tokens) - seen)} of {len(tokens)} instruments: their "
            "simulated volume / buy-sell quantity / OI exceed Kite's uint32 fields "
            "(packed by KiteTickerConnection.encode)"
        )


# 4. The pool over Kite: 3 connections x 3,000, and a broker refusing a 4th connection


def pairs(instruments: Iterable[Instrument]) -> list[tuple[str, str]]:
    return [(i.symbol, i.exchange) for i in instruments]


def loads(pool) -> list[int]:
    return [c.symbols for c in pool.get_stats().connections]


async def settled(pool, simulator, done, what: str) -> None:
    """Wait until ``done()`` while every pooled connection stays up.

    A connection the simulator drops, or a wait that runs out, fails at once with the state of
    both sides, rather than as a bare timeout.
    """

    def state() -> str:
        return (
            f"pool connections {[(a.index, a.state, a.state_reason) for a in pool.adapters]}; "
            f"ticks received {[a.ticks_received for a in pool.adapters]}; "
            f"simulator holds {[c.token_count for c in simulator.connections]}"
        )

    try:
        async with asyncio.timeout(WAIT):
            while not done():
                down = [a.index for a in pool.adapters if a.state != CONNECTED]
                assert not down, (
                    f"{what}: the Kite simulator dropped pooled connection(s) {down} "
                    f"(see test_the_kite_simulator_streams_instruments_with_large_lots); {state()}"
                )
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {WAIT} s; {state()}") from None


async def fill_three_connections(simulator, pool) -> list[Instrument]:
    everything = list(simulator.instruments.values())
    outcomes = await pool.subscribe_many(pairs(everything[: 3 * KITE_LIMIT]), QUOTE, WATCHLIST)
    assert all(o.ok for o in outcomes)
    assert [o.connection for o in outcomes[KITE_LIMIT - 1 : KITE_LIMIT + 1]] == [1, 2]
    assert [o.connection for o in outcomes[2 * KITE_LIMIT - 1 : 2 * KITE_LIMIT + 1]] == [2, 3]
    # Every held symbol is held by the broker and got its snapshot through its connection.
    await settled(
        pool,
        simulator,
        lambda: (
            [c.token_count for c in simulator.connections] == [KITE_LIMIT] * 3
            and [a.ticks_received for a in pool.adapters] == [KITE_LIMIT] * 3
        ),
        "9000 symbols held and streaming",
    )
    return everything


async def test_the_pool_holds_9000_symbols_on_three_kite_connections(make_simulator, make_pool):
    simulator = await make_simulator(broker="zerodha", ticks_per_second=0, max_tokens=None)
    pool = make_pool(simulator, max_symbols=KITE_LIMIT)
    everything = await fill_three_connections(simulator, pool)
    stats = pool.get_stats()
    assert stats.active_connections == 3 and stats.total_symbols == 9000
    assert loads(pool) == [KITE_LIMIT] * 3
    assert stats.utilisation_percent == 100.0

    extra = everything[3 * KITE_LIMIT]
    refused = await pool.subscribe(extra.symbol, extra.exchange, QUOTE, WATCHLIST)
    assert not refused.ok and refused.code == MAX_CAPACITY_REACHED
    assert "9000/9000" in refused.message
    assert pool.get_stats().total_symbols == 9000
    assert [c.token_count for c in simulator.connections] == [KITE_LIMIT] * 3


async def test_a_fourth_kite_connection_refused_with_429_loses_nothing(make_simulator, make_pool):
    simulator = await make_simulator(broker="zerodha", ticks_per_second=0, max_tokens=None)
    pool = make_pool(simulator, max_symbols=KITE_LIMIT, max_connections=4)
    everything = await fill_three_connections(simulator, pool)

    extra = everything[3 * KITE_LIMIT : 3 * KITE_LIMIT + 50]
    outcomes = await pool.subscribe_many(pairs(extra), QUOTE, WATCHLIST)
    assert not any(o.ok for o in outcomes)
    assert {o.code for o in outcomes} == {MAX_CAPACITY_REACHED}
    message = outcomes[0].message
    assert "9000/9000" in message
    assert "the broker allows less than configured" in message
    assert "refused connection 4" in message and "HTTP 429" in message
    assert CREDENTIALS.access_token not in message and CREDENTIALS.api_key not in message

    stats = pool.get_stats()
    assert stats.active_connections == 3 and stats.total_symbols == 9000
    assert [c.state for c in stats.connections] == ["connected"] * 3
    assert [c.token_count for c in simulator.connections] == [KITE_LIMIT] * 3
    held = {key for c in simulator.connections for key in c.tokens}
    assert held == {int(i.token) for i in everything[: 3 * KITE_LIMIT]}
    # Asking again does not try a 4th connection: the pool believes the broker.
    again = await pool.subscribe(extra[0].symbol, extra[0].exchange, QUOTE, WATCHLIST)
    assert again.code == MAX_CAPACITY_REACHED and "HTTP 429" in again.message
    assert len(pool.adapters) == 3 and len(simulator.connections) == 3


# 5. Settings above Kite's limit


async def test_max_symbols_above_kites_limit_spills_to_the_next_connection(
    make_simulator, make_pool, caplog
):
    simulator = await make_simulator(broker="zerodha", ticks_per_second=0, max_tokens=None)
    pool = make_pool(simulator, max_symbols=4000)
    wanted = list(simulator.instruments.values())[:5000]
    with caplog.at_level(logging.WARNING, logger="feedpool.zerodha"):
        outcomes = await pool.subscribe_many(pairs(wanted), LTP, WATCHLIST)
        assert all(o.ok for o in outcomes)
        assert [o.connection for o in outcomes[KITE_LIMIT - 1 : KITE_LIMIT + 1]] == [1, 2]
        assert loads(pool) == [KITE_LIMIT, 2000]
        assert [c.capacity for c in pool.get_stats().connections] == [KITE_LIMIT, 4000]
        # Each symbol's LTP snapshot arrives on its route: the mode request followed the subscribe.
        await settled(
            pool,
            simulator,
            lambda: (
                [c.token_count for c in simulator.connections] == [3000, 2000]
                and [a.ticks_received for a in pool.adapters] == [3000, 2000]
            ),
            "5000 symbols held and streaming",
        )
    # The adapter never asked the broker past its limit, so the broker reported no error.
    assert not [r for r in caplog.records if "reports an error" in r.getMessage()]
    assert pool.get_stats().total_symbols == 5000


# 6. Ticks on the bus, the same fields from either broker

FIELD_TYPES = {
    "symbol": str,
    "exchange": str,
    "mode": int,
    "ltp": float,
    "ltt": int,
    "timestamp": int,
    "open": float,
    "high": float,
    "low": float,
    "close": float,
    "volume": int,
    "last_trade_quantity": int,
    "average_price": float,
    "avg_trade_price": float,
    "total_buy_quantity": int,
    "total_sell_quantity": int,
    "change": float,
    "change_percent": float,
    "oi": int,
    "upper_circuit": float,
    "lower_circuit": float,
    "depth": dict,
}


@pytest.mark.parametrize("broker", ["angel", "zerodha"])
async def test_bus_ticks_have_exactly_the_fields_of_their_mode(
    broker, make_simulator, make_pool, bus
):
    if broker == "zerodha":
        simulator = await make_simulator(broker=broker, ticks_per_second=5, max_tokens=None)
    else:
        simulator = await make_simulator(ticks_per_second=5)
    pool = make_pool(simulator)
    subscriptions = plan(simulator)
    topics = {
        tick_topic(i.exchange, i.symbol, mode): (i, mode)
        for mode, instruments in subscriptions.items()
        for i in instruments
    }
    reader = bus(*topics)
    for mode, instruments in subscriptions.items():
        assert all(o.ok for o in await pool.subscribe_many(pairs(instruments), mode, WATCHLIST))
    since = now_ms()
    ticks = await reader.ticks_after(since, set(topics), timeout=WAIT)

    for topic, tick in ticks.items():
        reference, mode = topics[topic]
        assert set(tick) == set(TICK_FIELDS[mode]), (broker, topic, sorted(tick))
        assert (tick["symbol"], tick["exchange"], tick["mode"]) == (
            reference.symbol,
            reference.exchange,
            mode,
        )
        types = {name: type(value) for name, value in tick.items()}
        assert types == {name: FIELD_TYPES[name] for name in TICK_FIELDS[mode]}, (broker, topic)
        assert abs(tick["timestamp"] - since) < 60_000, (topic, tick["timestamp"])
        assert abs(tick["ltt"] - since) < 60_000, (topic, tick["ltt"])
        if reference.price:
            assert 0.7 * reference.price <= tick["ltp"] <= 1.3 * reference.price
        if mode == DEPTH:
            assert set(tick["depth"]) == {"buy", "sell"}
            for side in tick["depth"].values():
                assert len(side) == 5
                assert all(set(level) == {"price", "quantity", "orders"} for level in side)
