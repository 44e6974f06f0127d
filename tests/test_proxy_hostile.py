"""Hostile input is answered, not obeyed, and every other client goes on being served."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from proxy_client import API_KEY, Client, start_proxy
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from backend.proxy.messages import MAX_MESSAGE_BYTES

SBIN = {"symbol": "SBIN", "exchange": "NSE"}
MODES = ": expected 1, 2, 3 or 'LTP', 'Quote', 'Depth'"
NO_SYMBOLS = "Give symbols, a list of {symbol, exchange}, or symbol and exchange"
NOT_A_LIST = "symbols must be a non-empty list"


def subscribe(**fields):
    return {"action": "subscribe", "symbols": [SBIN], **fields}


@pytest.fixture
async def served(make_simulator, make_pool, symbols):
    """A proxy, a bystander client ticking on SBIN, and a way to open more clients."""
    proxy = await start_proxy(
        make_pool(await make_simulator(ticks_per_second=20)), auth_timeout=0.5
    )
    bystander = await Client.open(proxy.url)
    assert (await bystander.subscribe([("SBIN", "NSE")]))["status"] == "success"
    opened = [bystander]

    async def client(api_key: str | None = API_KEY) -> Client:
        opened.append(await Client.open(proxy.url, api_key))
        return opened[-1]

    yield proxy, bystander, client
    for each in opened:
        await each.close()
    await proxy.close()


async def still_served(bystander: Client) -> None:
    bystander.drain_ticks()
    await bystander.tick(within=5, symbol="SBIN")
    assert (await bystander.request({"action": "ping"}))["type"] == "pong"


CASES = [
    ("{not json", "INVALID_JSON", "Invalid JSON message"),
    ("", "INVALID_JSON", "Invalid JSON message"),
    (b"\xff\xfe{}", "INVALID_JSON", "Invalid JSON message"),
    ("[" * 100_000, "INVALID_JSON", "Invalid JSON message: nested more than 32 deep"),
    ("[1, 2]", "INVALID_JSON", "A message must be a JSON object"),
    ('"subscribe"', "INVALID_JSON", "A message must be a JSON object"),
    ("null", "INVALID_JSON", "A message must be a JSON object"),
    ({}, "INVALID_ACTION", "Missing action"),
    ({"action": 5}, "INVALID_ACTION", "The action must be a string"),
    ({"action": "fly"}, "INVALID_ACTION", "Unknown action 'fly'"),
    ({"action": "x" * 10_000}, "INVALID_ACTION", f"Unknown action {'x' * 40!r}"),
    (subscribe(mode=4), "INVALID_MODE", f"Invalid mode 4{MODES}"),
    (subscribe(mode=0), "INVALID_MODE", f"Invalid mode 0{MODES}"),
    (subscribe(mode="turbo"), "INVALID_MODE", f'Invalid mode "turbo"{MODES}'),
    (subscribe(mode=True), "INVALID_MODE", f"Invalid mode true{MODES}"),
    (subscribe(mode=2.5), "INVALID_MODE", f"Invalid mode 2.5{MODES}"),
    (subscribe(mode=[1]), "INVALID_MODE", f"Invalid mode [1]{MODES}"),
    (
        {"action": "unsubscribe", "symbols": [{**SBIN, "mode": "full"}]},
        "INVALID_MODE",
        f'Invalid mode "full"{MODES}',
    ),
    ({"action": "subscribe"}, "INVALID_PARAMETERS", NO_SYMBOLS),
    ({"action": "subscribe", "symbols": []}, "INVALID_PARAMETERS", NOT_A_LIST),
    ({"action": "subscribe", "symbols": "SBIN"}, "INVALID_PARAMETERS", NOT_A_LIST),
    (
        {"action": "subscribe", "symbols": ["SBIN"]},
        "INVALID_PARAMETERS",
        "symbols[0] must be an object",
    ),
    (
        {"action": "subscribe", "symbols": [SBIN, {"symbol": "INFY"}]},
        "INVALID_PARAMETERS",
        "symbols[1].exchange must be a non-empty string",
    ),
    (
        {"action": "subscribe", "symbol": 5, "exchange": "NSE"},
        "INVALID_PARAMETERS",
        "symbol must be a non-empty string",
    ),
    (
        {"action": "subscribe", "symbol": "SBIN", "exchange": " "},
        "INVALID_PARAMETERS",
        "exchange must be a non-empty string",
    ),
    (
        {"action": "subscribe", "symbol": "S" * 65, "exchange": "NSE"},
        "INVALID_PARAMETERS",
        "symbol is longer than 64 characters",
    ),
    (
        subscribe(depth=20),
        "INVALID_PARAMETERS",
        "depth must be 5: the broker sends best five levels",
    ),
    (
        {"action": "subscribe", "symbols": [SBIN] * 10_001},
        "INVALID_PARAMETERS",
        "Too many symbols: 10001 in one request, at most 10000",
    ),
    ({"action": "unsubscribe"}, "INVALID_PARAMETERS", NO_SYMBOLS),
]


@pytest.mark.parametrize(
    ("frame", "code", "message"), CASES, ids=[f"{i}-{c[1]}" for i, c in enumerate(CASES)]
)
async def test_bad_request_gets_its_error_and_others_are_served(served, frame, code, message):
    proxy, bystander, client = served
    hostile = await client()
    reply = await hostile.request(frame)
    assert reply["type"] == "error" and reply["status"] == "error"
    assert reply["code"] == code
    assert reply["message"] == message
    assert (await hostile.request({"action": "ping"}))["type"] == "pong"  # still open
    assert proxy.pool.total_symbols == 1
    await still_served(bystander)


async def test_error_envelope_echoes_the_request_id(served):
    _, _, client = served
    hostile = await client()
    reply = await hostile.request(subscribe(mode=9, request_id="abc"))
    assert reply == {
        "type": "error",
        "status": "error",
        "code": "INVALID_MODE",
        "message": "Invalid mode 9: expected 1, 2, 3 or 'LTP', 'Quote', 'Depth'",
        "request_id": "abc",
    }


async def test_unknown_exchange_and_symbol_are_refused_symbol_by_symbol(served):
    _, bystander, client = served
    reply = await (await client()).request(
        subscribe(
            symbols=[{"symbol": "SBIN", "exchange": "XYZ"}, {"symbol": "?", "exchange": "NSE"}]
        )
    )
    assert reply["status"] == "error"
    assert [e["code"] for e in reply["subscriptions"]] == ["INVALID_PARAMETERS"] * 2
    assert "unknown exchange 'XYZ'" in reply["subscriptions"][0]["message"]
    await still_served(bystander)


@pytest.mark.parametrize(
    "message",
    [
        subscribe(),
        {"action": "unsubscribe", "symbols": [SBIN]},
        {"action": "unsubscribe_all"},
        {"action": "ping"},
        {"action": "get_broker_info"},
        {"action": "get_supported_brokers"},
        {"action": "fly"},
    ],
)
async def test_nothing_but_authenticate_before_authentication(served, message):
    proxy, bystander, client = served
    stranger = await client(api_key=None)
    assert await stranger.request(message) == {
        "type": "error",
        "status": "error",
        "code": "NOT_AUTHENTICATED",
        "message": "Authenticate first",
    }
    assert proxy.pool.total_symbols == 1
    await still_served(bystander)


async def test_a_failed_authentication_leaves_the_socket_open_for_a_retry(served, caplog):
    _, bystander, client = served
    stranger = await client(api_key=None)
    for attempt in ({"action": "authenticate", "api_key": "wrong"}, {"action": "authenticate"}):
        assert await stranger.request(attempt) == {
            "type": "error",
            "status": "error",
            "code": "AUTHENTICATION_ERROR",
            "message": "Invalid API key",
        }
    wrong_type = await stranger.request({"action": "authenticate", "api_key": [API_KEY]})
    assert wrong_type["code"] == "AUTHENTICATION_ERROR"
    right = await stranger.request({"action": "authenticate", "api_key": API_KEY})
    assert right["type"] == "auth" and right["status"] == "success"
    failures = [r for r in caplog.records if "authentication failed" in r.getMessage()]
    assert len(failures) == 1  # a client retrying in a loop cannot flood the log
    assert "wrong" not in caplog.text
    await still_served(bystander)


async def test_a_client_that_never_authenticates_is_closed_with_4401(served):
    _, bystander, client = served
    stranger = await client(api_key=None)
    assert await stranger.closed(within=5) == (4401, "auth timeout")
    await still_served(bystander)


async def test_a_frame_over_the_size_limit_closes_that_connection_with_1009(served):
    proxy, bystander, _ = served
    websocket = await connect(proxy.url, compression=None, max_size=None)
    await websocket.send(json.dumps({"action": "authenticate", "api_key": API_KEY}))
    await websocket.recv()
    with contextlib.suppress(ConnectionClosed):
        await websocket.send("x" * (MAX_MESSAGE_BYTES + 1))
    await asyncio.wait_for(websocket.wait_closed(), 5)
    assert websocket.close_code == 1009
    await still_served(bystander)
