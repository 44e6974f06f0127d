"""The exchange simulator over real sockets, with real clients: ours and the official one."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from proxy_client import eventually
from simulator_process import command, read_event, spawn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from backend.brokers.angel import protocol
from backend.brokers.angel.protocol import LTP, QUOTE, SNAP_QUOTE, Packet
from backend.instruments.master import Instrument, InstrumentMaster
from backend.simulator import ExchangeSimulator, SimulatorCredentials

ROOT = Path(__file__).resolve().parents[1]
WAIT = 10.0  # seconds any single condition may take


# token, symbol (also the name), exchange, type, lot, tick size, expiry, strike, reference price
INSTRUMENTS = [
    ("3045", "SBIN", "NSE", "EQ", 1, 0.05, "", 0, 812.35),
    ("500325", "RELIANCE", "BSE", "EQ", 1, 0.05, "", 0, 2950),
    ("43215", "NIFTY30DEC25FUT", "NFO", "FUTIDX", 75, 0.1, "30DEC2025", 0, 26150),
    ("43216", "NIFTY30DEC2526000CE", "NFO", "OPTIDX", 75, 0.05, "30DEC2025", 26000, 0),  # no price
    ("1180", "USDINR30DEC25FUT", "CDS", "FUTCUR", 1000, 0.0025, "30DEC2025", 0, 88.5),
    ("445003", "CRUDEOIL30DEC25FUT", "MCX", "FUTCOM", 100, 1.0, "30DEC2025", 0, 5600),
]
MASTER = InstrumentMaster(
    Instrument(token, symbol, re.match("[A-Z]+", symbol)[0], *rest)
    for token, symbol, *rest in INSTRUMENTS
)
BY_KEY = {(protocol.EXCHANGE_TYPES[i.exchange], i.token): i for i in MASTER}
SBIN, RELIANCE, NIFTY_FUT, NIFTY_CE, USDINR, CRUDE = BY_KEY
UNKNOWN = (1, "987654")  # a token the master does not hold

CREDENTIALS = SimulatorCredentials()
HEADERS = {
    "Authorization": f"Bearer {CREDENTIALS.auth_token}",
    "x-api-key": CREDENTIALS.api_key,
    "x-client-code": CREDENTIALS.client_code,
    "x-feed-token": CREDENTIALS.feed_token,
}


@pytest.fixture
async def start() -> AsyncIterator[Callable[..., Awaitable[ExchangeSimulator]]]:
    """Start simulators on a free port with the test master; all are stopped afterwards."""
    started: list[ExchangeSimulator] = []

    async def start_one(**options) -> ExchangeSimulator:
        options.setdefault("seed", 1)
        simulator = ExchangeSimulator(MASTER, **options)
        await simulator.start()
        started.append(simulator)
        return simulator

    yield start_one
    for simulator in started:
        await simulator.stop()


def client(simulator: ExchangeSimulator, headers: dict[str, str] | None = None) -> connect:
    return connect(simulator.url, additional_headers=HEADERS if headers is None else headers)


def subscribe(mode: int, *keys: tuple[int, str], correlation_id: str = "", action: int = 1) -> str:
    tokens: dict[int, list[str]] = {}
    for exchange_type, token in keys:
        tokens.setdefault(exchange_type, []).append(token)
    return protocol.request(action, mode, tokens, correlation_id)


def unsubscribe(mode: int, *keys: tuple[int, str]) -> str:
    return subscribe(mode, *keys, action=protocol.UNSUBSCRIBE)


async def answer(ws: ClientConnection, *requests: str) -> tuple[list[str], list[Packet]]:
    """Send requests then ``ping``; the texts and ticks received up to the ``pong``."""
    for request in requests:
        await ws.send(request)
    await ws.send("ping")
    texts: list[str] = []
    ticks: list[Packet] = []
    async with asyncio.timeout(WAIT):
        while (message := await ws.recv()) != "pong":
            if isinstance(message, bytes):
                ticks.append(protocol.decode(message))
            else:
                texts.append(message)
    return texts, ticks


async def ticks(ws: ClientConnection, until: Callable[[list[Packet]], bool]) -> list[Packet]:
    """Ticks received until ``until(ticks so far)`` holds; no text frame may come meanwhile."""
    received: list[Packet] = []
    async with asyncio.timeout(WAIT):
        while not until(received):
            message = await ws.recv()
            assert isinstance(message, bytes), message
            received.append(protocol.decode(message))
    return received


def keys_seen(packets: list[Packet]) -> set[tuple[int, int, str]]:
    return {(p.mode, p.exchange_type, p.token) for p in packets}


def error(code_and_message: tuple[str, str], correlation_id: str = "") -> dict[str, str]:
    return json.loads(protocol.error_frame(code_and_message, correlation_id))


def wire_tick(exchange_type: int, token: str) -> int:
    instrument = BY_KEY.get((exchange_type, token))
    tick_size = instrument.tick_size if instrument else 0.05
    return round(tick_size * protocol.price_divisor(exchange_type))


def check_prices(packet: Packet) -> None:
    """The packet looks like a market: ticks, OHLC, book, circuits, times."""
    tick = wire_tick(packet.exchange_type, packet.token)
    now_ms = time.time() * 1000
    assert abs(packet.exchange_timestamp - now_ms) < 5_000
    assert packet.ltp > 0 and packet.ltp % tick == 0
    if packet.mode == LTP:
        return
    for price in (packet.open, packet.high, packet.low, packet.close):
        assert price > 0 and price % tick == 0
    assert packet.low <= packet.ltp <= packet.high
    assert packet.low <= packet.open <= packet.high
    assert packet.low <= packet.average_price <= packet.high
    assert packet.volume > 0 and packet.last_traded_quantity > 0
    assert packet.total_buy_quantity > 0 and packet.total_sell_quantity > 0
    if packet.mode == QUOTE:
        return
    assert abs(packet.last_traded_timestamp - now_ms / 1000) < 5  # epoch seconds
    assert packet.lower_circuit <= packet.low and packet.high <= packet.upper_circuit
    band = packet.upper_circuit - packet.close
    assert band in (pytest.approx(packet.close * r, abs=tick) for r in (0.1, 0.2))
    assert packet.close - packet.lower_circuit == pytest.approx(band, abs=tick)
    assert packet.week52_low <= packet.low and packet.high <= packet.week52_high
    derivative = packet.exchange_type in (2, 4, 5, 7, 13)
    assert (packet.open_interest > 0) == derivative
    assert packet.open_interest_change == 0
    buys, sells = packet.depth[:5], packet.depth[5:]
    assert [level.is_buy for level in packet.depth] == [True] * 5 + [False] * 5
    bid_prices = [level.price for level in buys]
    ask_prices = [level.price for level in sells]
    assert bid_prices == sorted(bid_prices, reverse=True) and len(set(bid_prices)) == 5
    assert ask_prices == sorted(ask_prices) and len(set(ask_prices)) == 5
    assert bid_prices[0] < packet.ltp <= ask_prices[0]
    assert all(price > 0 and price % tick == 0 for price in bid_prices + ask_prices)
    assert all(level.quantity > 0 and level.orders > 0 for level in packet.depth)


# Handshake


@pytest.mark.parametrize("header", list(protocol.HTTP_AUTH_ERRORS))
@pytest.mark.parametrize("fault", ["missing", "wrong"])
async def test_a_missing_or_wrong_header_is_refused_with_401(start, header, fault):
    simulator = await start()
    headers = dict(HEADERS)
    if fault == "missing":
        del headers[header]
    else:
        headers[header] = "Bearer nope" if header == "Authorization" else "nope"
    with pytest.raises(InvalidStatus) as refused:
        async with client(simulator, headers):
            pass
    assert refused.value.response.status_code == 401
    assert refused.value.response.headers["x-error-message"] == protocol.HTTP_AUTH_ERRORS[header]
    assert simulator.connections == []


@pytest.mark.parametrize("authorization", ["Bearer simulator-auth-token", "simulator-auth-token"])
async def test_the_auth_token_is_accepted_with_or_without_bearer(start, authorization):
    simulator = await start()
    async with client(simulator, {**HEADERS, "Authorization": authorization}) as ws:
        assert await answer(ws) == ([], [])


async def test_other_paths_get_404(start):
    simulator = await start()
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            simulator.url.replace("/smart-stream", "/other"), additional_headers=HEADERS
        ):
            pass
    assert refused.value.response.status_code == 404


async def test_custom_credentials_are_required_and_never_shown(start):
    credentials = SimulatorCredentials("C1", "key-1", "feed-1", "auth-1")
    simulator = await start(credentials=credentials)
    assert "key-1" not in repr(credentials) and "auth-1" not in repr(credentials)
    with pytest.raises(InvalidStatus):
        async with client(simulator):
            pass
    headers = {"Authorization": "auth-1", "x-api-key": "key-1", "x-client-code": "C1"}
    async with client(simulator, {**headers, "x-feed-token": "feed-1"}):
        assert [c.client_code for c in simulator.connections] == ["C1"]


async def test_no_log_line_shows_a_secret(start, caplog):
    simulator = await start()
    with caplog.at_level(logging.DEBUG):
        async with client(simulator) as ws:
            await answer(ws, subscribe(LTP, SBIN))
            await simulator.drop(simulator.connection_holding(SBIN))
        with pytest.raises(InvalidStatus):
            async with client(simulator, {**HEADERS, "x-api-key": "wrong"}):
                pass
    text = "\n".join(
        record.getMessage()
        for record in caplog.records
        if record.name in ("websockets.server", "feedpool.simulator")  # not our test clients
    )
    assert "x-api-key: ***" in text  # the simulator's debug log of the handshake, masked
    for secret in (CREDENTIALS.api_key, CREDENTIALS.feed_token, CREDENTIALS.auth_token, "wrong"):
        assert secret not in text


async def test_a_fourth_connection_gets_429_until_one_closes(start):
    simulator = await start()
    first, second, third = [await client(simulator) for _ in range(3)]
    with pytest.raises(InvalidStatus) as refused:
        async with client(simulator):
            pass
    assert refused.value.response.status_code == 429
    assert refused.value.response.headers["x-error-message"] == (
        "Invalid Request. Connection Limit Exceeded."
    )
    # Another client code has slots of its own.
    other = SimulatorCredentials(client_code="OTHER")
    elsewhere = await start(credentials=other, max_connections=1)
    async with client(elsewhere, {**HEADERS, "x-client-code": "OTHER"}):
        pass

    await second.close()
    async with client(simulator) as fourth:
        assert await answer(fourth) == ([], [])
        assert 4 in [c.id for c in simulator.connections]
    await first.close()
    await third.close()


# Requests


async def test_the_1001st_token_is_refused_whole_and_the_others_keep_streaming(start):
    simulator = await start(ticks_per_second=1.0)
    held = [SBIN, RELIANCE, NIFTY_FUT, NIFTY_CE, CRUDE]
    held += [(1, str(100_000 + n)) for n in range(995)]
    async with client(simulator) as ws:
        texts, snapshots = await answer(
            ws, subscribe(LTP, *held[:600]), subscribe(LTP, *held[600:])
        )
        assert texts == []
        snapshots += await ticks(ws, lambda t: len(keys_seen(snapshots + t)) == 1000)
        assert keys_seen(snapshots) == {(LTP, *key) for key in held}

        # At the limit: one new token is too many, whatever comes with it...
        request = subscribe(LTP, held[0], UNKNOWN, correlation_id="over")
        texts, _ = await answer(ws, request)
        assert [json.loads(t) for t in texts] == [error(protocol.ERROR_SUBSCRIPTION_LIMIT, "over")]
        assert simulator.connections[0].token_count == 1000
        # ...while a held token in another mode counts once.
        texts, _ = await answer(ws, subscribe(QUOTE, SBIN))
        assert texts == []

        fresh = await ticks(ws, lambda t: len({p.token for p in t if p.sequence > 1}) >= 20)
        assert UNKNOWN[1] not in {p.token for p in fresh}
        assert {(p.exchange_type, p.token) for p in fresh} <= set(held)


@pytest.mark.parametrize(
    ("request_text", "correlation_id"),
    [
        ("not json", ""),
        ("[1, 2]", ""),
        ('{"correlationID": "abc", "action": 2, "params": {"mode": 1, "tokenList": []}}', "abc"),
        ('{"correlationID": "m1", "action": 1, "params": {"mode": 4, "tokenList": []}}', "m1"),
        ('{"correlationID": "no-params", "action": 1}', "no-params"),
        (
            '{"correlationID": "x", "action": 1, '
            '"params": {"mode": 1, "tokenList": [{"exchangeType": 6, "tokens": ["1"]}]}}',
            "x",
        ),
        ('{"correlationID": "a-long-correlation-id", "action": 1}', "a-long-correlation-id"),
        ("[" * 100_000, ""),
    ],
)
async def test_a_malformed_request_gets_e1001(start, request_text, correlation_id):
    simulator = await start()
    async with client(simulator) as ws:
        texts, _ = await answer(ws, request_text)
        assert [json.loads(t) for t in texts] == [
            error(protocol.ERROR_INVALID_PAYLOAD, correlation_id)
        ]


async def test_a_binary_frame_gets_e1001_and_ping_gets_pong(start):
    simulator = await start()
    async with client(simulator) as ws:
        await ws.send(b"\x01\x02")
        assert json.loads(await ws.recv()) == error(protocol.ERROR_INVALID_PAYLOAD)
        await ws.send("ping")
        assert await ws.recv() == "pong"
        # WebSocket protocol pings are answered too.
        await asyncio.wait_for(await ws.ping(), WAIT)


async def test_requests_are_answered_in_arrival_order(start):
    simulator = await start(max_tokens=1)
    async with client(simulator) as ws:
        texts, _ = await answer(
            ws,
            "nonsense",
            subscribe(LTP, SBIN, RELIANCE, correlation_id="two"),
            subscribe(LTP, SBIN, correlation_id="one"),
            subscribe(LTP, RELIANCE, correlation_id="other"),
        )
    assert [json.loads(t) for t in texts] == [
        error(protocol.ERROR_INVALID_PAYLOAD),
        error(protocol.ERROR_SUBSCRIPTION_LIMIT, "two"),
        error(protocol.ERROR_SUBSCRIPTION_LIMIT, "other"),
    ]


# Ticks


async def test_a_snapshot_follows_each_subscription_of_each_token_and_mode(start):
    simulator = await start(ticks_per_second=0)
    async with client(simulator) as ws:
        requests = [
            subscribe(LTP, SBIN, NIFTY_FUT, USDINR),
            subscribe(QUOTE, SBIN, RELIANCE, CRUDE),
            subscribe(SNAP_QUOTE, SBIN, NIFTY_CE, USDINR, CRUDE),
        ]
        texts, snapshots = await answer(ws, *requests)
        expected = {
            (LTP, *SBIN), (LTP, *NIFTY_FUT), (LTP, *USDINR),
            (QUOTE, *SBIN), (QUOTE, *RELIANCE), (QUOTE, *CRUDE),
            (SNAP_QUOTE, *SBIN), (SNAP_QUOTE, *NIFTY_CE), (SNAP_QUOTE, *USDINR),
            (SNAP_QUOTE, *CRUDE),
        }  # fmt: skip
        snapshots += await ticks(ws, lambda t: len(snapshots) + len(t) == len(expected))
        assert texts == [] and keys_seen(snapshots) == expected
        for packet in snapshots:
            check_prices(packet)
            assert packet.sequence == 1

        # Subscribing again sends nothing new; with no tick rate nothing else comes.
        assert await answer(ws, *requests) == ([], [])
        (info,) = simulator.connections
        assert info.token_count == 6
        assert info.tokens == {SBIN, RELIANCE, NIFTY_FUT, NIFTY_CE, USDINR, CRUDE}


async def test_ticks_look_like_a_market(start):
    simulator = await start(ticks_per_second=40)
    everything = [SBIN, RELIANCE, NIFTY_FUT, NIFTY_CE, USDINR, CRUDE, UNKNOWN]
    async with client(simulator) as ws:
        await ws.send(subscribe(SNAP_QUOTE, *everything))
        await ws.send(subscribe(LTP, SBIN, USDINR))
        received = await ticks(
            ws,
            lambda t: len(t) > 400 and len({p.token for p in t if p.sequence > 1}) == 7,
        )
    last: dict[tuple[int, int, str], Packet] = {}
    for packet in received:
        check_prices(packet)
        key = (packet.mode, packet.exchange_type, packet.token)
        if key in last:
            before = last[key]
            assert packet.sequence > before.sequence
            assert packet.exchange_timestamp >= before.exchange_timestamp
            if packet.mode == SNAP_QUOTE:
                assert packet.volume > before.volume
                assert (packet.open, packet.close) == (before.open, before.close)
                assert packet.high >= before.high and packet.low <= before.low
        last[key] = packet
    assert {(p.exchange_type, p.token) for p in received} == set(everything)
    # Frames of one tick in two modes carry the same trade.
    ltp = {(p.token, p.sequence): p.ltp for p in received if p.mode == LTP}
    snap = {(p.token, p.sequence): p.ltp for p in received if p.mode == SNAP_QUOTE}
    common = ltp.keys() & snap.keys()
    assert common and all(ltp[k] == snap[k] for k in common)
    # The walk moves.
    assert len({p.ltp for p in received if p.token == NIFTY_FUT[1]}) > 1


async def test_tokens_outside_the_master_get_synthetic_prices(start):
    simulator = await start(ticks_per_second=20)
    unknown = [(1, "987654"), (7, "4711"), (13, "99999")]
    async with client(simulator) as ws:
        await ws.send(subscribe(SNAP_QUOTE, *unknown))
        received = await ticks(ws, lambda t: len({(p.token, p.sequence > 1) for p in t}) == 6)
    for packet in received:
        check_prices(packet)
        rupees = packet.close / protocol.price_divisor(packet.exchange_type)
        assert 100 <= rupees <= 5000


async def test_the_same_seed_repeats_the_prices(start):
    keys = [SBIN, NIFTY_CE, USDINR, UNKNOWN]

    async def first_ticks(seed: int) -> dict[tuple[str, int], Packet]:
        simulator = await start(ticks_per_second=50, seed=seed)
        async with client(simulator) as ws:
            await ws.send(subscribe(SNAP_QUOTE, *keys))
            received = await ticks(
                ws, lambda t: all(sum(p.token == k for p in t) >= 5 for _, k in keys)
            )
        for packet in received:  # the times differ from run to run
            packet.exchange_timestamp = packet.last_traded_timestamp = 0
        return {(p.token, p.sequence): p for p in received if p.sequence <= 5}

    first, again, other = await first_ticks(42), await first_ticks(42), await first_ticks(43)
    assert len(first) == 20
    assert first == again
    assert all(first[k].ltp != other[k].ltp or first[k].volume != other[k].volume for k in first)


async def test_unsubscribe_stops_a_mode_then_the_token(start):
    simulator = await start(ticks_per_second=100)
    async with client(simulator) as ws:
        await ws.send(subscribe(LTP, SBIN, RELIANCE))
        await ws.send(subscribe(QUOTE, SBIN))
        await ticks(ws, lambda t: {(p.mode, p.token) for p in t if p.sequence > 1}
                    >= {(LTP, SBIN[1]), (QUOTE, SBIN[1]), (LTP, RELIANCE[1])})  # fmt: skip

        texts, _ = await answer(ws, unsubscribe(QUOTE, SBIN))
        assert texts == []
        after = await ticks(ws, lambda t: sum(p.token == SBIN[1] for p in t) >= 20)
        assert keys_seen(after) == {(LTP, *SBIN), (LTP, *RELIANCE)}
        assert simulator.connection_holding(SBIN) == 1

        texts, _ = await answer(ws, unsubscribe(LTP, SBIN), unsubscribe(SNAP_QUOTE, CRUDE))
        assert texts == []  # unsubscribing what is not held is fine
        after = await ticks(ws, lambda t: len(t) >= 40)
        assert keys_seen(after) == {(LTP, *RELIANCE)}
        assert simulator.connection_holding(SBIN) is None
        assert simulator.connections[0].tokens == {RELIANCE}


async def test_the_rate_changes_on_open_connections(start):
    simulator = await start(ticks_per_second=2)
    async with client(simulator) as ws:
        await ws.send(subscribe(LTP, SBIN))
        await ticks(ws, lambda t: len(t) == 1)  # the snapshot
        simulator.set_rate(500)
        async with asyncio.timeout(5):  # at 2 a second, 100 ticks would take 50 s
            await ticks(ws, lambda t: len(t) == 100)
    for bad in (0, -1, "fast", None, True):
        with pytest.raises(ValueError, match="ticks_per_second"):
            simulator.set_rate(bad)
    snapshots_only = await start(ticks_per_second=0)
    with pytest.raises(ValueError, match="snapshots only"):
        snapshots_only.set_rate(5)


async def test_a_sender_that_fell_behind_does_not_catch_up_with_missed_ticks(start):
    simulator = await start(ticks_per_second=50)
    async with client(simulator) as ws:
        await ws.send(subscribe(LTP, SBIN))
        await ticks(ws, lambda t: len(t) == 3)
        # The machine is busy: the loop stalls, and the sender misses 50 ticks' worth of time.
        time.sleep(1.0)  # noqa: ASYNC251 (the stall is the point)
        woke = time.time() * 1000 - 1
        after = await ticks(ws, lambda t: sum(p.exchange_timestamp >= woke for p in t) == 10)
    stamps = [packet.exchange_timestamp for packet in after if packet.exchange_timestamp >= woke]
    # Catching up would send the missed ticks at once, stamped within a millisecond or two;
    # ten ticks at 50 a second take about 200 ms.
    assert stamps[-1] - stamps[0] >= 50


async def test_one_trade_reaches_every_connection_holding_its_token(start):
    simulator = await start(ticks_per_second=50)
    async with client(simulator) as first, client(simulator) as second:
        await first.send(subscribe(QUOTE, SBIN))
        await second.send(subscribe(LTP, SBIN))

        def until(received: list[Packet]) -> bool:
            return sum(p.sequence > 1 for p in received) >= 10

        quotes, ltps = await asyncio.gather(ticks(first, until), ticks(second, until))
    by_sequence = {p.sequence: p.ltp for p in quotes}
    common = [p for p in ltps if p.sequence in by_sequence]
    # The exchange trades once and both hear of it: the same trades, not a walk each.
    assert len(common) >= 5
    assert all(p.ltp == by_sequence[p.sequence] for p in common)


async def test_a_client_that_stops_reading_never_slows_another(start):
    simulator = await start(ticks_per_second=40)
    many = [(1, str(100_000 + i)) for i in range(1000)]  # about 15 MB/s of SnapQuote frames
    # The second client takes one message and then reads nothing more off its socket (nor
    # waits for a closing handshake behind megabytes of ticks at the end).
    stalling = connect(simulator.url, additional_headers=HEADERS, max_queue=1, close_timeout=0.1)
    async with client(simulator) as reader, stalling as stalled:
        await stalled.send(subscribe(SNAP_QUOTE, *many))
        await eventually(lambda: any(c.backlogged for c in simulator.connections), WAIT)
        await reader.send(subscribe(LTP, SBIN))
        received = await ticks(reader, lambda t: len(t) >= 40)
        assert len({p.sequence for p in received}) == len(received)
        stalled_info = next(c for c in simulator.connections if c.token_count == 1000)
        assert stalled_info.backlogged


# Drop


async def test_drop_closes_a_connection_abruptly_and_frees_its_slot(start):
    simulator = await start(ticks_per_second=5)
    clients = [await client(simulator) for _ in range(3)]
    for ws, key in zip(clients, (SBIN, RELIANCE, CRUDE), strict=True):
        await answer(ws, subscribe(LTP, key))
    victim = simulator.connection_holding(RELIANCE)
    assert victim == 2

    await simulator.drop(victim)
    with pytest.raises(ConnectionClosedError) as closed:
        async with asyncio.timeout(WAIT):
            while True:
                await clients[1].recv()
    assert closed.value.rcvd is None  # no close frame: an abnormal closure, code 1006
    assert [c.id for c in simulator.connections] == [1, 3]
    assert simulator.connection_holding(RELIANCE) is None
    with pytest.raises(KeyError):
        await simulator.drop(victim)

    async with client(simulator) as replacement:
        await replacement.send(subscribe(LTP, RELIANCE))
        snapshot = await ticks(replacement, lambda t: len(t) == 1)
        assert keys_seen(snapshot) == {(LTP, *RELIANCE)}
        assert simulator.connection_holding(RELIANCE) == 4
    for ws in (clients[0], clients[2]):
        await ws.close()


# The official client


OFFICIAL_MODE_NAMES = {LTP: "LTP", QUOTE: "QUOTE", SNAP_QUOTE: "SNAP_QUOTE"}


def as_official(packet: Packet) -> dict:
    """What ``SmartWebSocketV2._parse_binary_data`` should make of ``packet``'s frame."""
    parsed = {
        "subscription_mode": packet.mode,
        "exchange_type": packet.exchange_type,
        "token": packet.token,
        "sequence_number": packet.sequence,
        "exchange_timestamp": packet.exchange_timestamp,
        "last_traded_price": packet.ltp,
        "subscription_mode_val": OFFICIAL_MODE_NAMES[packet.mode],
    }
    if packet.mode >= QUOTE:
        parsed |= {
            "last_traded_quantity": packet.last_traded_quantity,
            "average_traded_price": packet.average_price,
            "volume_trade_for_the_day": packet.volume,
            "total_buy_quantity": packet.total_buy_quantity,
            "total_sell_quantity": packet.total_sell_quantity,
            "open_price_of_the_day": packet.open,
            "high_price_of_the_day": packet.high,
            "low_price_of_the_day": packet.low,
            "closed_price": packet.close,
        }
    if packet.mode == SNAP_QUOTE:

        def side(is_buy: bool) -> list[dict]:
            return [
                {"flag": int(is_buy), "quantity": lv.quantity, "price": lv.price,
                 "no of orders": lv.orders}
                for lv in packet.depth
                if lv.is_buy == is_buy
            ]  # fmt: skip

        parsed |= {
            "last_traded_timestamp": packet.last_traded_timestamp,
            "open_interest": packet.open_interest,
            "open_interest_change_percentage": packet.open_interest_change,
            "upper_circuit_limit": packet.upper_circuit,
            "lower_circuit_limit": packet.lower_circuit,
            "52_week_high_price": packet.week52_high,
            "52_week_low_price": packet.week52_low,
            "best_5_buy_data": side(True),
            "best_5_sell_data": side(False),
        }
    return parsed


# The second: a simulator started with a "Bearer " auth token, as Angel's login returns it.
@pytest.mark.parametrize("auth_token", [CREDENTIALS.auth_token, "Bearer simulator-session-jwt"])
async def test_the_official_client_reads_what_we_decode(start, tmp_path, monkeypatch, auth_token):
    monkeypatch.chdir(tmp_path)  # SmartApi writes logs/ into the working directory
    import logzero
    from SmartApi.smartWebSocketV2 import SmartWebSocketV2

    credentials = SimulatorCredentials(auth_token=auth_token)
    simulator = await start(ticks_per_second=20, credentials=credentials)
    loop = asyncio.get_running_loop()
    received: asyncio.Queue[tuple[bytes, dict]] = asyncio.Queue()
    subscriptions = {
        LTP: [SBIN, UNKNOWN],
        QUOTE: [NIFTY_FUT, CRUDE],
        SNAP_QUOTE: [USDINR, NIFTY_CE],
    }

    class Official(SmartWebSocketV2):
        """The official client, recording each binary frame with what its ``on_data`` gets."""

        def __init__(self) -> None:
            super().__init__(
                auth_token,
                CREDENTIALS.api_key,
                CREDENTIALS.client_code,
                CREDENTIALS.feed_token,
                max_retry_attempt=0,
            )
            self.ROOT_URI = simulator.url
            self.input_request_dict = {}  # a class attribute upstream, shared by instances
            self.frame = b""

        def on_open(self, wsapp) -> None:
            for mode, keys in subscriptions.items():
                token_list = [{"exchangeType": ex, "tokens": [token]} for ex, token in keys]
                self.subscribe(f"mode{mode}", mode, token_list)

        def _on_data(self, wsapp, data, data_type, continue_flag) -> None:
            self.frame = data
            super()._on_data(wsapp, data, data_type, continue_flag)

        def on_data(self, wsapp, data) -> None:
            loop.call_soon_threadsafe(received.put_nowait, (self.frame, data))

        # Upstream's callbacks take fewer arguments than websocket-client passes.
        def _on_close(self, wsapp, *args) -> None:
            pass

        def on_error(self, *args) -> None:
            pass

    official = Official()
    thread = threading.Thread(target=official.connect, daemon=True)
    thread.start()
    try:
        wanted = {(mode, *key) for mode, keys in subscriptions.items() for key in keys}
        seen: dict[tuple[int, int, str], int] = {}
        async with asyncio.timeout(WAIT):
            while len(seen) < len(wanted) or min(seen.values()) < 3:
                frame, parsed = await received.get()
                packet = protocol.decode(frame)
                assert parsed == as_official(packet)
                key = (packet.mode, packet.exchange_type, packet.token)
                seen[key] = seen.get(key, 0) + 1
        assert seen.keys() == wanted
        assert [c.client_code for c in simulator.connections] == [CREDENTIALS.client_code]
    finally:
        # The official client's own close, racing its reader thread, waits 3 s for a close frame
        # that thread takes, and can strand the thread 10 s in a select on the closed socket.
        # Dropped by the server, the thread closes the client and ends at once.
        for connection in simulator.connections:
            await simulator.drop(connection.id)
        await asyncio.to_thread(thread.join, WAIT)
        official.close_connection()
        logzero.logfile(None)
    assert not thread.is_alive()


# The command line


async def test_the_command_line_serves_drops_and_exits_cleanly():
    secrets = ["--api-key", "K-secret", "--feed-token", "F-secret", "--auth-token", "T-secret"]
    process = await spawn(
        *("--client-code", "CLI", *secrets),
        *("--ticks-per-second", "5", "--seed", "3", "--max-connections", "2"),
    )
    try:
        ready = await read_event(process)
        assert ready == {
            "event": "ready",
            "url": ready["url"],
            "pid": process.pid,
            "client_code": "CLI",
            "broker": "angel",
            "master": ready["master"],
            "rest": ready["rest"],
        }
        assert ready["url"].startswith("ws://127.0.0.1:") and ready["url"].endswith("/smart-stream")
        assert ready["rest"] == ready["url"].replace("ws://", "http://").removesuffix(
            "/smart-stream"
        )
        headers = {
            "Authorization": "T-secret",
            "x-api-key": "K-secret",
            "x-client-code": "CLI",
            "x-feed-token": "F-secret",
        }
        async with connect(ready["url"], additional_headers=headers) as ws:
            await ws.send(subscribe(QUOTE, (1, "2885")))
            snapshot = await ticks(ws, lambda t: len(t) == 1)
            assert keys_seen(snapshot) == {(QUOTE, 1, "2885")}
            assert await command(process, {"command": "connections"}) == {
                "event": "connections",
                "connections": [
                    {
                        "id": 1,
                        "client_code": "CLI",
                        "token_count": 1,
                        "tokens": [[1, "2885"]],
                        "backlogged": False,
                    }
                ],
            }
            assert await command(process, {"command": "drop", "connection": 1}) == {
                "event": "dropped",
                "connection": 1,
            }
            with pytest.raises(ConnectionClosedError):
                async with asyncio.timeout(WAIT):
                    while True:
                        await ws.recv()
        for bad in ("nonsense", {"command": "drop", "connection": 9}, {"command": "launch"}):
            assert (await command(process, bad))["event"] == "error"
        assert await command(process, {"command": "rate", "ticks_per_second": 20}) == {
            "event": "rate",
            "ticks_per_second": 20,
        }
        refused = await command(process, {"command": "rate", "ticks_per_second": "x"})
        assert refused["event"] == "error" and "ticks_per_second" in refused["message"]

        process.stdin.close()  # the end of stdin ends commands, not the simulator
        async with connect(ready["url"], additional_headers=headers) as ws:
            assert await answer(ws) == ([], [])
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), WAIT) == 0
        stderr = (await process.stderr.read()).decode()
        assert "connection 1: dropping on command" in stderr
        assert "tick rate set to 20 per token per second" in stderr
        assert not any(secret in stderr for secret in ("K-secret", "F-secret", "T-secret"))
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize("stdin", ["/dev/null", "a file", "closed"])
async def test_the_command_line_runs_without_commands_when_stdin_is_not_a_stream(stdin, tmp_path):
    """Under a service manager, ``nohup`` or cron, stdin is ``/dev/null``, a file or closed: the
    simulator serves without commands, says so once, and stops cleanly."""
    commands = tmp_path / "commands.txt"
    commands.write_text('{"command": "connections"}\n')
    with commands.open("rb") as file:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "backend.simulator", "--port", "0"),
            cwd=ROOT,
            stdin={"/dev/null": subprocess.DEVNULL, "a file": file, "closed": None}[stdin],
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=(lambda: os.close(0)) if stdin == "closed" else None,
        )
    try:
        ready = await read_event(process)
        assert ready["event"] == "ready"
        async with connect(ready["url"], additional_headers=HEADERS) as ws:
            await ws.send(subscribe(QUOTE, SBIN))
            snapshot = await ticks(ws, lambda t: len(t) == 1)
            assert keys_seen(snapshot) == {(QUOTE, *SBIN)}
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), WAIT) == 0
        assert await process.stdout.read() == b""  # the file's command went unanswered
        stderr = (await process.stderr.read()).decode()
        assert stderr.count("commands are off") == 1, stderr
        assert "running without them" in stderr
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.filterwarnings("ignore:ssl.OP_NO_SSL:DeprecationWarning")  # SmartConnect's
async def test_the_command_line_plays_sessions_mutes_and_expires(tmp_path, monkeypatch):
    """The account's flags, a login with them, ``mute`` and ``expire_sessions``; and a
    ``Bearer`` auth token that is no part of the token on either side."""
    monkeypatch.chdir(tmp_path)  # SmartApi writes logs/ into the working directory
    import logzero
    import pyotp
    from SmartApi import SmartConnect

    totp_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    account = ["--pin", "S3cret-PIN", "--totp-secret", totp_secret, "--api-key", "K-secret"]
    process = await spawn("--auth-token", "Bearer T2", *account, "--ticks-per-second", "50")
    try:
        ready = await read_event(process)
        headers = {**HEADERS, "x-api-key": "K-secret"}
        with_prefix = connect(
            ready["url"], additional_headers={**headers, "Authorization": "Bearer T2"}
        )
        without = connect(ready["url"], additional_headers={**headers, "Authorization": "T2"})
        async with with_prefix as first, without as second:
            for ws in (first, second):
                await ws.send(subscribe(QUOTE, (1, "2885")))
                assert keys_seen(await ticks(ws, lambda t: len(t) == 1)) == {(QUOTE, 1, "2885")}

            def log_in() -> dict:
                client = SmartConnect(api_key="K-secret", root=ready["rest"])
                code = pyotp.TOTP(totp_secret).now()
                return client.generateSession(CREDENTIALS.client_code, "S3cret-PIN", code)["data"]

            session = await asyncio.to_thread(log_in)
            logzero.logfile(None)
            assert await command(process, {"command": "mute", "connection": 1}) == {
                "event": "muted",
                "connection": 1,
            }
            await answer(first)  # what was sent before the mute
            await first.send(subscribe(LTP, SBIN))  # its snapshot would follow at once
            await ticks(second, lambda t: len(t) == 10)  # 0.2 s at this rate
            assert await answer(first) == ([], [])
            for bad in ({"command": "mute"}, {"command": "mute", "connection": 9}):
                assert (await command(process, bad))["event"] == "error"

            assert await command(process, {"command": "expire_sessions"}) == {
                "event": "sessions_expired"
            }
            for ws in (first, second):
                with pytest.raises(ConnectionClosedError):
                    async with asyncio.timeout(WAIT):
                        while True:
                            await ws.recv()
        assert (await command(process, {"command": "connections"}))["connections"] == []
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ready["url"], additional_headers={**headers, "Authorization": "T2"}):
                pass
        assert refused.value.response.status_code == 401
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), WAIT) == 0
        stderr = (await process.stderr.read()).decode()
        assert "connection 1: muted on command" in stderr
        tokens = [session[name] for name in ("refreshToken", "feedToken")]
        tokens.append(session["jwtToken"].removeprefix("Bearer "))
        for secret in ("S3cret-PIN", totp_secret, "K-secret", "T2", *tokens):
            assert secret not in stderr, secret
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_the_command_line_help_shows_the_defaults():
    shown = subprocess.run(
        [sys.executable, "-m", "backend.simulator", "--help"],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},  # one line per option
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=True,
    ).stdout
    defaults = SimulatorCredentials()
    for default in (defaults.client_code, defaults.api_key, defaults.feed_token):
        assert f"(default: {default})" in shown
    assert f"(default: {defaults.auth_token})" in shown
    assert "--ticks-per-second" in shown and "--max-tokens" in shown


async def test_long_correlation_ids_are_served_as_the_broker_serves_them(start):
    """OpenAlgo's Angel adapter sends 14 to 21 characters; the broker streams to it."""
    simulator = await start(max_tokens=1)
    correlation_id = "openalgo-20-chars-id"
    assert len(correlation_id) == 20
    request = json.dumps(
        {
            "correlationID": correlation_id,
            "action": 1,
            "params": {"mode": LTP, "tokenList": [{"exchangeType": 1, "tokens": ["3045"]}]},
        }
    )
    async with client(simulator) as ws:
        await ws.send(request)
        assert keys_seen(await ticks(ws, bool)) == {(LTP, *SBIN)}
        # A refusal names the long ID as it was sent.
        over = request.replace('"3045"', '"2885"')
        texts, _ = await answer(ws, over)
        assert [json.loads(t) for t in texts] == [
            error(protocol.ERROR_SUBSCRIPTION_LIMIT, correlation_id)
        ]


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--totp-secret", "NOT-BASE32-secret"], "--totp-secret must be base32"),
        (["--totp-secret", "JBSWY3DPEHPK3PXP"], "23 characters or more"),
        (["--redirect-url", "ftp://127.0.0.1/secret-path"], "--redirect-url must be an http"),
    ],
)
def test_the_command_line_refuses_a_bad_account_without_showing_it(flags, named):
    refused = subprocess.run(
        [sys.executable, "-m", "backend.simulator", *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert refused.returncode == 2
    assert named in refused.stderr and flags[1] not in refused.stderr


def test_the_account_defaults_are_documented_and_a_bad_totp_secret_is_refused():
    defaults = SimulatorCredentials()
    for value in (defaults.pin, defaults.totp_secret, defaults.api_secret, defaults.redirect_url):
        assert value in SimulatorCredentials.__doc__
        assert value not in repr(defaults)
    with pytest.raises(ValueError, match="base32") as refused:
        SimulatorCredentials(totp_secret="not a secret")
    assert "not a secret" not in str(refused.value)
