"""Noren OMS end to end: the official client (``NorenRestApiOAuth`` 0.0.41, module
``NorenRestApiPy.NorenApi``) against the simulator, the simulator's connect and socket rules, an
adapter's mode changes, and the real backend on the standalone simulator (``--broker noren``)
through the client API: every mode's fields as from another broker, the silent cap reported as
no data, an ended session.

The official client runs its own thread; it is pointed at the simulator with
``NorenApi(host=..., websocket=...)`` and given the simulator's session with ``set_session``, and
is otherwise unchanged. The legacy client (``NorenRestApiPy`` 0.0.22) installs the same module
file, so it cannot be installed beside it: the legacy connect (``t:"c"``) is sent as its
documentation shows it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from collections.abc import Iterable

import msgspec
import pytest
from NorenRestApiPy.NorenApi import FeedType, NorenApi
from proxy_client import API_KEY, BusMonitor, Client, eventually, start_proxy
from simulator_process import StandaloneSimulator
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from backend.brokers import BROKERS
from backend.brokers.noren import protocol
from backend.brokers.noren.adapter import NO_DATA, NorenAdapter
from backend.bus.messages import TICK_TYPES, decode
from backend.feed import DEPTH, LTP, QUOTE, TICK_FIELDS, tick_topic
from backend.instruments.master import Instrument
from backend.simulator import ExchangeSimulator, SimulatorCredentials

ACCOUNT = SimulatorCredentials()
WAIT = 15.0
UPDATES = 3
#: Fields that are the scrip's and never change: a snapshot's only.
STATIC = {"pp", "ls", "ti"}


def named(simulator: ExchangeSimulator, symbol: str, exchange: str) -> Instrument:
    return next(
        i for i in simulator.instruments.values() if (i.symbol, i.exchange) == (symbol, exchange)
    )


def plan(simulator: ExchangeSimulator) -> dict[int, list[Instrument]]:
    """Per FeedPool mode, an NSE share and one of an NFO option, a CDS future and an index."""
    every = simulator.instruments.values()
    option = min(
        (i for i in every if i.exchange == "NFO" and i.symbol.endswith("CE")),
        key=lambda i: i.symbol,
    )
    future = min((i for i in every if i.exchange == "CDS"), key=lambda i: i.symbol)
    return {
        LTP: [named(simulator, "SBIN", "NSE"), named(simulator, "NIFTY", "NSE_INDEX")],
        QUOTE: [named(simulator, "INFY", "NSE"), option],
        DEPTH: [named(simulator, "TCS", "NSE"), future],
    }


def pairs(instruments: Iterable[Instrument]) -> list[tuple[str, str]]:
    return [(i.symbol, i.exchange) for i in instruments]


def official_session(simulator: ExchangeSimulator, token: str, subscriptions: dict[str, list[str]]):
    """The official client on the simulator with ``token``, subscribing ``{feed: keys}`` once
    open, until each scrip has its snapshot and :data:`UPDATES` updates: ``(what its
    callbacks got, in order)``; then it unsubscribes and closes."""
    api = NorenApi(host=simulator.rest_url + "/NorenWClientAPI", websocket=simulator.url)
    api.set_session(ACCOUNT.client_code, "", "", token)
    got: list[tuple[str, object]] = []
    counts: dict[tuple[str, str], int] = {}
    done, failed = threading.Event(), threading.Event()
    wanted = {(feed, key) for feed, keys in subscriptions.items() for key in keys}

    def on_feed(message: dict) -> None:
        got.append(("feed", message))
        held = (protocol.FEED_OF[message["t"]], protocol.tick_key(message))
        counts[held] = counts.get(held, 0) + 1
        if set(counts) == wanted and min(counts.values()) > UPDATES:
            done.set()

    def on_open() -> None:
        got.append(("open", None))
        for feed, keys in subscriptions.items():
            api.subscribe(keys, FeedType.TOUCHLINE if feed == "t" else FeedType.SNAPQUOTE)

    def on_error(error: object) -> None:
        got.append(("error", error))
        failed.set()

    api.start_websocket(
        subscribe_callback=on_feed, socket_open_callback=on_open, socket_error_callback=on_error
    )
    try:
        if subscriptions:
            assert done.wait(WAIT), (counts, got[-3:])
            for feed, keys in subscriptions.items():
                api.unsubscribe(keys, FeedType.TOUCHLINE if feed == "t" else FeedType.SNAPQUOTE)
        else:
            assert failed.wait(WAIT), got
    finally:
        # Its close waits out its own timeouts (about 10 s): the test waits for the socket's end
        # at the simulator instead.
        threading.Thread(target=api.close_websocket, daemon=True).start()
    return got


def expected(merged: dict, mode: int) -> dict:
    """What FeedPool's tick must say of the official client's merged fields, read here by hand."""

    def price(name: str) -> float:
        return float(merged.get(name, "0"))

    tick = {"ltp": price("lp"), "ltt": int(merged["ft"]) * 1000}
    if mode == LTP:
        return tick
    tick |= {
        "open": price("o"),
        "high": price("h"),
        "low": price("l"),
        "close": price("c"),
        "volume": int(merged["v"]),
        "average_price": price("ap"),
        "change_percent": price("pc"),
    }
    if mode == QUOTE:
        return tick
    tick |= {
        "last_trade_quantity": int(merged["ltq"]),
        "total_buy_quantity": int(merged["tbq"]),
        "total_sell_quantity": int(merged["tsq"]),
        "oi": int(merged["oi"]),
        "upper_circuit": price("uc"),
        "lower_circuit": price("lc"),
    }
    tick["depth"] = {
        side: [
            {
                "price": price(f"{p}p{n}"),
                "quantity": int(merged[f"{p}q{n}"]),
                "orders": int(merged[f"{p}o{n}"]),
            }
            for n in range(1, 6)
        ]
        for side, p in (("buy", "b"), ("sell", "s"))
    }
    return tick


# 1. The official client


async def test_the_official_client_gets_snapshots_then_changes_and_feedpool_agrees(
    make_simulator, publisher
):
    simulator = await make_simulator(broker="shoonya", ticks_per_second=20, max_tokens=None)
    subscriptions = plan(simulator)
    by_key = {NorenAdapter.key(i): (i, m) for m, found in subscriptions.items() for i in found}
    feeds: dict[str, list[str]] = {}
    for key, (_, mode) in by_key.items():
        feeds.setdefault(protocol.MODE_FEEDS[mode], []).append(key)

    got = await asyncio.to_thread(official_session, simulator, ACCOUNT.access_token, feeds)

    assert got[0] == ("open", None), "the ak OK opens the official client"
    await eventually(lambda: not simulator.connections)  # unsubscribed, then closed
    # FeedPool's adapter reads the very messages the official client got, in order.
    adapter = NorenAdapter(
        1, simulator.url, BROKERS["shoonya"].simulator_credentials(ACCOUNT), publisher=publisher
    )
    for mode, instruments in subscriptions.items():
        assert await adapter.hold(instruments, mode) == []  # held, unconnected
    published: list[dict] = []
    publisher.tick_listener = lambda topic, payload: published.append(json.loads(payload))
    merged: dict[str, dict] = {}
    checked = 0
    for _, message in got[1:]:
        key = protocol.tick_key(message)
        instrument, mode = by_key[key]
        values = {name: value for name, value in message.items() if name not in ("t", "e", "tk")}
        assert all(isinstance(value, str) for value in message.values())
        if key not in merged:
            assert message["t"] == protocol.SNAPSHOTS[protocol.MODE_FEEDS[mode]]
            assert STATIC <= set(values) and {"lp", "v", "c", "ft"} <= set(values)
            merged[key] = dict(values)
        else:
            assert message["t"] == protocol.UPDATES[protocol.MODE_FEEDS[mode]] and "ft" in values
            changed = {n: v for n, v in values.items() if n != "ft"}
            assert all(merged[key].get(n) != v for n, v in changed.items()), "not a change"
            assert not STATIC & set(changed)
            merged[key] |= values
        decimals = 4 if key.startswith("CDS|") else 2
        assert int(merged[key]["pp"]) == len(merged[key]["lp"].partition(".")[2]) == decimals
        adapter._on_message(json.dumps(message))
        adapter._flush()
        tick = published.pop()
        assert list(tick) == list(TICK_FIELDS[mode])
        assert (tick["symbol"], tick["exchange"]) == (instrument.symbol, instrument.exchange)
        assert {name: tick[name] for name in expected(merged[key], mode)} == expected(
            merged[key], mode
        )
        checked += 1
    assert checked >= len(by_key) * (UPDATES + 1) and not published
    await adapter.close()


async def test_a_token_that_is_not_good_is_refused_with_not_ok(make_simulator):
    simulator = await make_simulator(broker="zebu", max_tokens=None)
    got = await asyncio.to_thread(official_session, simulator, "not-a-token", {})
    (_, refusal) = got[-1]
    assert refusal == {
        "t": "ak",
        "s": "NOT_OK",
        "uid": ACCOUNT.client_code,
        "emsg": protocol.INVALID_SESSION,
    }


async def test_the_legacy_connect_and_the_socket_rules(make_simulator):
    """``t:"c"`` is answered ``ck``; a subscription before an accepted connect is ignored; a
    text heartbeat is answered; a second socket of the session closes the first."""
    simulator = await make_simulator(broker="zebu", ticks_per_second=0, max_tokens=None)
    sbin = protocol.key("NSE", named(simulator, "SBIN", "NSE").token)
    async with connect(simulator.url) as ws:
        await ws.send(protocol.feed_message("t", [sbin]))
        await ws.send(protocol.connect_message("c", ACCOUNT.client_code, "not-a-token"))
        assert json.loads(await ws.recv())["s"] == protocol.NOT_OK
        await ws.send(protocol.heartbeat_message())
        assert json.loads(await ws.recv()) == {"t": "hk"}
        assert not simulator.connections[0].tokens, "subscribed without an accepted connect"
        await ws.send(protocol.connect_message("c", ACCOUNT.client_code, ACCOUNT.access_token))
        assert json.loads(await ws.recv()) == {"t": "ck", "s": "OK", "uid": ACCOUNT.client_code}
        await ws.send(protocol.feed_message("t", [sbin]))
        assert json.loads(await ws.recv())["t"] == "tk"
        async with connect(simulator.url):
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), WAIT)
    assert closed.value.rcvd.code == 1008


async def test_an_adapter_moves_a_scrip_between_the_feeds_and_leaves_none_behind(
    make_simulator, publisher, caplog
):
    """LTP, Quote, Depth and back: each mode ticks with its fields; after each move and the
    release the simulator holds nothing of the old feed; the token is in no log line."""
    simulator = await make_simulator(broker="flattrade", ticks_per_second=50, max_tokens=None)
    sbin = named(simulator, "SBIN", "NSE")
    credentials = BROKERS["flattrade"].simulator_credentials(ACCOUNT)
    ticks: asyncio.Queue[tuple[str, dict]] = asyncio.Queue()
    publisher.tick_listener = lambda topic, data: ticks.put_nowait(
        (topic.decode(), json.loads(data))
    )
    adapter = NorenAdapter(1, simulator.url, credentials, publisher=publisher)
    with caplog.at_level(logging.DEBUG):
        await NorenAdapter.check(simulator.url, credentials)
        await adapter.connect()
        try:
            for moves in ((LTP, QUOTE, DEPTH), (DEPTH, LTP)):
                for mode in moves:
                    assert await adapter.hold([sbin], mode) == []
                    topic = tick_topic("NSE", "SBIN", mode)
                    async with asyncio.timeout(WAIT):
                        while (tick := await ticks.get())[0] != topic:
                            pass
                    assert list(tick[1]) == list(TICK_FIELDS[mode])
                await adapter.release([sbin])  # the last mode's feed: nothing else was left
                await eventually(lambda: not simulator.connections[0].tokens)
        finally:
            await adapter.close()
    assert not [r for r in caplog.records if ACCOUNT.access_token in r.getMessage()]


# 2. The backend

#: OpenAlgo's Python SDK subscribing INFY's quote (``argv``: the API's URL and key); prints the
#: first message its callback gets.
OPENALGO_QUOTE = """
import json, sys, threading
from openalgo import api

client = api(api_key=sys.argv[2], ws_url=sys.argv[1])
assert client.connect()
first = threading.Event()

def on_data(message):
    if not first.is_set():
        print(json.dumps(message), flush=True)
        first.set()

client.subscribe_quote([{"exchange": "NSE", "symbol": "INFY"}], on_data_received=on_data)
first.wait(15)
client.disconnect()
"""


@pytest.fixture
async def noren_backend(tmp_path, backends):
    """A backend on a standalone Shoonya simulator capping active subscriptions at 6: the
    simulator, the backend's ready line, and a client of its API."""
    simulator = await StandaloneSimulator.start(
        tmp_path, "--broker", "noren", "--ticks-per-second", "5", "--max-tokens", "6"
    )
    try:
        backend, ready = await backends(
            BROKER="shoonya",
            SHOONYA_USER_ID=ACCOUNT.client_code,
            SHOONYA_ACCESS_TOKEN=ACCOUNT.access_token,
            SHOONYA_WS_URL=simulator.ready["url"],
            INSTRUMENT_MASTER=simulator.ready["master"],
        )
        assert ready["event"] == "ready", (ready, backend.stderr.read_text())
        client = await Client.open(ready["ws"])
        try:
            yield simulator, ready, client
        finally:
            await client.close()
    finally:
        await simulator.stop()


async def ticks_of(client: Client, wanted: set[tuple[str, str, int]]) -> dict:
    """The first tick of each ``(symbol, exchange, mode)``."""
    ticks: dict[tuple[str, str, int], dict] = {}
    async with asyncio.timeout(WAIT):
        while set(ticks) != wanted:
            data = (await client.ticks.get())["data"]
            ticks.setdefault((data["symbol"], data["exchange"], data["mode"]), data)
    return ticks


async def test_the_backend_streams_noren_as_another_broker_and_reports_silence_and_expiry(
    noren_backend, make_simulator, make_pool
):
    simulator, ready, client = noren_backend
    every = [
        ("SBIN", "NSE", LTP),
        ("NIFTY", "NSE_INDEX", LTP),
        ("INFY", "NSE", QUOTE),
        ("RELIANCE", "NSE", QUOTE),
        ("TCS", "NSE", DEPTH),
        ("HDFCBANK", "NSE", DEPTH),
    ]
    for mode in (LTP, QUOTE, DEPTH):
        chosen = [(s, e) for s, e, m in every if m == mode]
        assert (await client.subscribe(chosen, mode=mode))["status"] == "success"
    noren = await ticks_of(client, set(every))

    # The same subscriptions on another broker (Angel One's simulator): the same fields, typed.
    angel = await make_simulator(ticks_per_second=5)
    proxy = await start_proxy(make_pool(angel))
    other = await Client.open(proxy.url)
    try:
        for mode in (LTP, QUOTE, DEPTH):
            chosen = [(s, e) for s, e, m in every if m == mode]
            assert (await other.subscribe(chosen, mode=mode))["status"] == "success"
        reference = await ticks_of(other, set(every))
    finally:
        await other.close()
        await proxy.close()
    for (symbol, exchange, mode), data in noren.items():
        assert list(data) == list(reference[symbol, exchange, mode]) == list(TICK_FIELDS[mode])
        typed = decode(tick_topic(exchange, symbol, mode), msgspec.json.encode(data))
        assert type(typed) is TICK_TYPES[mode] and msgspec.to_builtins(typed) == data
        assert data["ltp"] > 0

    # OpenAlgo's own SDK, as a strategy uses it, finds every Quote field it reads in Noren's
    # ticks (it would read a missing one as 0, without a word).
    sdk = await asyncio.create_subprocess_exec(
        sys.executable, "-c", OPENALGO_QUOTE, ready["ws"], API_KEY, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(sdk.communicate(), WAIT)
    printed = [line for line in out.decode().splitlines() if line.startswith("{")]
    assert printed, out
    got = json.loads(printed[0])
    assert (got["symbol"], got["exchange"]) == ("INFY", "NSE")
    assert set(got["data"]) <= set(TICK_FIELDS[QUOTE]), got
    assert all(got["data"][name] > 0 for name in ("ltp", "open", "high", "low", "close")), got

    # Past the simulator's cap of 6 active subscriptions: accepted by Noren, no data, refused.
    more = [("WIPRO", "NSE"), ("ITC", "NSE")]
    refused = await client.subscribe(more, mode=QUOTE)
    assert refused["status"] == "error", refused
    for outcome in refused["subscriptions"]:
        assert outcome["status"] == "error" and outcome["code"] == "BROKER_ERROR", outcome
        assert (
            f"{NO_DATA} the broker accepted the subscription but sent no data"
            in (outcome["message"])
        )
    (connection,) = (await simulator.command(command="connections"))["connections"]
    assert connection["token_count"] == 6

    # The day's session ends: session_expired, with Noren's words.
    bus = BusMonitor(ready["zmq"])
    reasons: list[str] = []

    def expired(topic: str, payload: dict) -> bool:
        reasons.extend(
            c["reason"] for c in payload.get("connections", []) if c["state"] == "session_expired"
        )
        return bool(reasons)

    try:
        assert (await simulator.command(command="expire_sessions"))["event"] == "sessions_expired"
        await bus.until(expired)
    finally:
        bus.close()
    assert protocol.INVALID_SESSION in reasons[0], reasons
    assert ACCOUNT.access_token not in reasons[0]
