"""The client API end to end: real proxy, pool and simulator objects, real WebSocket clients."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websocket
from proxy_client import API_KEY, Client, eventually, now_ms

from backend.brokers import BROKERS
from backend.feed import LTP_FIELDS, QUOTE_FIELDS

DEPTH_FIELDS = {*QUOTE_FIELDS, "oi", "upper_circuit", "lower_circuit", "depth"}
SBIN, RELIANCE = ("SBIN", "NSE"), ("RELIANCE", "NSE")


@pytest.fixture
async def clients():
    opened: list[Client] = []

    async def make(url: str, api_key: str | None = API_KEY) -> Client:
        client = await Client.open(url, api_key)
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.close()


async def test_every_action_and_reply_shape(serve, clients):
    proxy = await serve(ticks_per_second=20)
    client = await clients(proxy.url, api_key=None)

    assert await client.request({"action": "authenticate", "apikey": API_KEY}) == {
        "type": "auth",
        "status": "success",
        "message": "Authentication successful",
        "broker": "simulator",
        "user_id": "TEST",
        "supported_features": {"ltp": True, "quote": True, "depth": True},
    }

    before = int(time.time() * 1000)
    pong = await client.request({"action": "ping", "timestamp": 1234})
    assert pong == {
        "type": "pong",
        "status": "success",
        "server_timestamp": pong["server_timestamp"],
        "client_timestamp": 1234,
    }
    assert before <= pong["server_timestamp"] <= time.time() * 1000
    assert (await client.request({"type": "ping"}))["type"] == "pong"  # `type` names the action

    info = {"type": "broker_info", "status": "success", "broker": "simulator", "user_id": "TEST"}
    (account,) = (await client.request({"action": "get_broker_info"})).pop("accounts")
    assert account == {
        "name": "simulator",
        "broker": "simulator",
        "user_id": "TEST",
        "serving": True,
        "problem": "",
        "symbols": 0,
        "capacity": 3000,
    }
    assert {
        k: v
        for k, v in (await client.request({"action": "get_broker_info"})).items()
        if k != "accounts"
    } == {**info, "adapter_status": "idle"}
    assert await client.request({"action": "get_supported_brokers"}) == {
        "type": "supported_brokers",
        "status": "success",
        "brokers": ["simulator", *BROKERS],
        "count": 1 + len(BROKERS),
    }
    for action in ("ping", "get_broker_info", "get_supported_brokers"):
        reply = await client.request({"action": action, "request_id": action})
        assert reply["status"] == "success" and reply["request_id"] == action

    # The single form, as OpenAlgo's SDK sends it: no request_id, none echoed.
    single = {"action": "subscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 1, "depth": 5}
    assert await client.request(single) == {
        "type": "subscribe",
        "status": "success",
        "subscriptions": [
            {
                "symbol": "SBIN",
                "exchange": "NSE",
                "status": "success",
                "mode": 1,
                "depth": 5,
                "broker": "simulator",
                "connection": 1,
            }
        ],
        "message": "Subscription processing complete",
        "broker": "simulator",
    }
    bulk = await client.subscribe([RELIANCE, ("NOSUCH", "NSE")], mode="depth", request_id="r-1")
    assert bulk["status"] == "partial" and bulk["request_id"] == "r-1"
    assert bulk["subscriptions"][0]["mode"] == 3
    assert bulk["subscriptions"][1] == {
        "symbol": "NOSUCH",
        "exchange": "NSE",
        "status": "error",
        "code": "INVALID_PARAMETERS",
        "message": "unknown symbol 'NOSUCH' on exchange 'NSE'",
        "broker": "simulator",
    }
    connected = await client.request({"action": "get_broker_info"})
    assert connected.pop("accounts")[0]["symbols"] == 2
    assert connected == {**info, "adapter_status": "connected"}

    ltp = await client.tick(symbol="SBIN", mode=1)
    assert set(ltp) == {"type", "symbol", "exchange", "mode", "data", "broker", "received_ms"}
    assert ltp["broker"] == "simulator" and ltp["exchange"] == "NSE"
    assert set(ltp["data"]) == set(LTP_FIELDS) and ltp["data"]["mode"] == 1
    depth = await client.tick(symbol="RELIANCE", mode=3)
    assert set(depth["data"]) == DEPTH_FIELDS
    for side in ("buy", "sell"):
        levels = depth["data"]["depth"][side]
        assert len(levels) == 5 and all(set(lv) == {"price", "quantity", "orders"} for lv in levels)
    assert isinstance(depth["data"]["ltp"], float) and depth["data"]["ltp"] > 0

    unsubscribe = {"action": "unsubscribe", "symbol": "SBIN", "exchange": "NSE", "mode": 1}
    assert await client.request(unsubscribe) == {
        "type": "unsubscribe",
        "status": "success",
        "message": "Unsubscription processing complete",
        "successful": [
            {
                "symbol": "SBIN",
                "exchange": "NSE",
                "mode": 1,
                "status": "success",
                "broker": "simulator",
            }
        ],
        "failed": [],
        "broker": "simulator",
    }
    again = await client.request({**unsubscribe, "request_id": 9})
    assert again["status"] == "error" and again["request_id"] == 9
    assert again["failed"][0]["code"] == "NOT_SUBSCRIBED"

    everything = await client.request({"action": "unsubscribe_all"})
    assert everything["status"] == "success"
    assert [(e["symbol"], e["mode"]) for e in everything["successful"]] == [("RELIANCE", 3)]
    assert proxy.pool.total_symbols == 0


async def test_bulk_subscribe_fills_three_connections_then_reports_capacity(
    serve, clients, symbols, bus
):
    pool_stats = bus("SYS.POOL")
    proxy = await serve(ticks_per_second=0)
    first = await clients(proxy.url)

    reply = await first.subscribe(symbols(2500))
    assert reply["status"] == "success" and len(reply["subscriptions"]) == 2500
    assert {e["connection"] for e in reply["subscriptions"]} == {1, 2, 3}
    seen = {}

    def three_connections(topic: str, stats: dict) -> bool:
        seen.update(stats)
        return stats["active_connections"] == 3 and stats["total_symbols"] == 2500

    await pool_stats.until(three_connections)
    assert [c["symbols"] for c in seen["connections"]] == [1000, 1000, 500]
    assert (await first.request({"action": "unsubscribe_all"}))["status"] == "success"

    second = await clients(proxy.url)
    reply = await second.subscribe(symbols(3001), request_id=2)
    assert reply["status"] == "partial" and len(reply["subscriptions"]) == 3001
    refused = [e for e in reply["subscriptions"] if e["status"] == "error"]
    assert len(refused) == 1 and refused[0]["code"] == "MAX_CAPACITY_REACHED"
    assert (refused[0]["symbol"], refused[0]["exchange"]) == symbols(1, 3000)[0]
    assert "3000/3000" in refused[0]["message"]


async def test_higher_mode_tick_reaches_lower_mode_holders(serve, clients):
    proxy = await serve(ticks_per_second=20)
    ltp_client, depth_client = await clients(proxy.url), await clients(proxy.url)
    assert (await ltp_client.subscribe([SBIN], mode=1))["status"] == "success"
    assert (await depth_client.subscribe([SBIN], mode=3))["status"] == "success"
    since = now_ms()

    depth = await depth_client.tick(mode=3)
    while depth["data"]["timestamp"] <= since:  # a tick from after both subscribed
        depth = await depth_client.tick(mode=3)
    ltp = await ltp_client.tick(mode=1)
    while ltp["data"]["timestamp"] < depth["data"]["timestamp"]:
        ltp = await ltp_client.tick(mode=1)
    # The same Depth tick, cut down to LTP for the LTP holder.
    assert ltp["data"] == {
        **{field: depth["data"][field] for field in LTP_FIELDS},
        "mode": 1,
    }


async def test_one_client_holding_ltp_and_quote_gets_both_modes(serve, clients):
    proxy = await serve(ticks_per_second=20)
    client = await clients(proxy.url)
    assert (await client.subscribe([SBIN], mode="LTP"))["status"] == "success"
    assert (await client.subscribe([SBIN], mode="Quote"))["status"] == "success"
    since = now_ms()
    by_timestamp: dict[int, set[int]] = {}

    async def both_modes_of_one_tick() -> None:
        while True:
            tick = await client.tick()
            stamp = tick["data"]["timestamp"]
            assert tick["mode"] == tick["data"]["mode"]
            if stamp > since:
                by_timestamp.setdefault(stamp, set()).add(tick["mode"])
                if by_timestamp[stamp] == {1, 2}:
                    return

    await asyncio.wait_for(both_modes_of_one_tick(), 10)


async def test_shared_symbol_keeps_ticking_when_the_other_client_leaves(serve, clients):
    proxy = await serve(ticks_per_second=20)
    one, two = await clients(proxy.url), await clients(proxy.url)
    for client in (one, two):
        assert (await client.subscribe([SBIN]))["status"] == "success"

    unsubscribe = {"action": "unsubscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE"}]}
    assert (await one.request(unsubscribe))["status"] == "success"
    since = now_ms()
    tick = await two.tick(symbol="SBIN")
    while tick["data"]["timestamp"] <= since:
        tick = await two.tick(symbol="SBIN")
    assert proxy.pool.total_symbols == 1

    assert (await one.subscribe([SBIN]))["status"] == "success"
    await two.close()
    await eventually(lambda: len(proxy.sessions) == 1)
    since = now_ms()
    tick = await one.tick(symbol="SBIN")
    while tick["data"]["timestamp"] <= since:
        tick = await one.tick(symbol="SBIN")
    assert proxy.pool.total_symbols == 1


async def test_disconnect_releases_exactly_what_the_client_held(serve, clients, symbols):
    proxy = await serve(ticks_per_second=0)
    (account,) = proxy.pool.accounts
    pool = account.pool
    x, y, z = symbols(3)
    leaving, staying = await clients(proxy.url), await clients(proxy.url)
    assert (await leaving.subscribe([x, y], mode=1))["status"] == "success"
    assert (await leaving.subscribe([y], mode=3))["status"] == "success"
    assert (await staying.subscribe([y, z], mode=2))["status"] == "success"
    (gone,) = (s for s in proxy.sessions.values() if len(s.subscriptions) == 3)

    await leaving.close()
    await eventually(lambda: len(proxy.sessions) == 1)
    assert pool.holds(gone) == []
    assert pool.subscription_map == {(*y, 2): 1, (*z, 2): 1}
    index = proxy.subscription_index
    assert index.holders(*y, 1) == frozenset() and len(index) == 2
    # The broker now streams y at Quote, the highest mode still held.
    adapter = pool.adapters[0]
    assert {instrument.symbol: mode for instrument, mode in adapter.held.values()} == {
        y[0]: 2,
        z[0]: 2,
    }


def openalgo_sdk_session(url: str) -> list[dict]:
    """What OpenAlgo's Python SDK does, with the library it uses (websocket-client): authenticate,
    then one single-form subscribe per symbol at LTP with depth 5; the first LTP tick per symbol.
    """
    ws = websocket.create_connection(url, timeout=10)
    try:
        ws.send(json.dumps({"action": "authenticate", "api_key": API_KEY}))
        assert json.loads(ws.recv())["status"] == "success"
        for symbol in ("SBIN", "INFY"):
            message = {"action": "subscribe", "symbol": symbol, "exchange": "NSE", "mode": 1}
            ws.send(json.dumps({**message, "depth": 5}))
        ticks: dict[str, dict] = {}
        while len(ticks) < 2:
            message = json.loads(ws.recv())
            if message["type"] == "market_data" and message["mode"] == 1:
                assert "ltp" in message["data"] and "timestamp" in message["data"]
                ticks.setdefault(message["symbol"], message)
        return list(ticks.values())
    finally:
        ws.close()


async def test_a_client_written_for_openalgo_works_unchanged(serve):
    proxy = await serve(ticks_per_second=5)
    ticks = await asyncio.to_thread(openalgo_sdk_session, proxy.url)
    assert {t["symbol"] for t in ticks} == {"SBIN", "INFY"}
    assert all(t["exchange"] == "NSE" and t["broker"] == "simulator" for t in ticks)


async def test_the_snapshot_after_a_subscription_reaches_the_client(serve, clients, symbols):
    proxy = await serve(ticks_per_second=0)  # the simulator sends snapshots only
    client = await clients(proxy.url)
    assert (await client.subscribe(symbols(1000), mode="LTP"))["status"] == "success"
    client.drain_ticks()
    wanted = symbols(1500, 1000)
    assert (await client.subscribe(wanted, mode="LTP"))["status"] == "success"
    missing = set(wanted)

    async def every_snapshot() -> None:
        while missing:
            tick = await client.ticks.get()
            missing.discard((tick["symbol"], tick["exchange"]))

    await asyncio.wait_for(every_snapshot(), 15)
