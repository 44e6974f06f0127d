"""The simulator plays the brokers' sessions: REST logins judged by the official clients
(smartapi-python's SmartConnect, kiteconnect's KiteConnect), the tokens its WebSocket then
accepts, sessions that expire, and connections that go silent.

The official clients are synchronous (requests), so they run in a thread.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pyotp
import pytest
from kiteconnect import KiteConnect
from kiteconnect.exceptions import InputException, TokenException
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from backend.brokers.angel import protocol as angel
from backend.brokers.zerodha import protocol as kite
from backend.simulator import ExchangeSimulator, SimulatorCredentials
from backend.simulator.child import SimulatorProcess

# SmartConnect sets TLS options Python deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:ssl.OP_NO_SSL:DeprecationWarning")

CREDENTIALS = SimulatorCredentials()
TOTP = pyotp.TOTP(CREDENTIALS.totp_secret)
WAIT = 10.0


@pytest.fixture
def smart_connect(tmp_path, monkeypatch):
    """``SmartConnect`` pointed at a simulator; it writes its logs under the working directory."""
    monkeypatch.chdir(tmp_path)
    import logzero
    from SmartApi import SmartConnect

    yield lambda root: SmartConnect(api_key=CREDENTIALS.api_key, root=root)
    logzero.logfile(None)


def angel_headers(jwt: str, feed_token: str) -> dict[str, str]:
    return {
        "Authorization": jwt,
        "x-api-key": CREDENTIALS.api_key,
        "x-client-code": CREDENTIALS.client_code,
        "x-feed-token": feed_token,
    }


def angel_client(simulator: ExchangeSimulator, jwt: str, feed_token: str) -> connect:
    return connect(simulator.url, additional_headers=angel_headers(jwt, feed_token))


def kite_client(simulator: ExchangeSimulator, access_token: str) -> connect:
    query = urlencode({"api_key": CREDENTIALS.api_key, "access_token": access_token})
    return connect(f"{simulator.url}?{query}", compression=None)


def an_instrument(simulator: ExchangeSimulator, exchange: str = "NSE"):
    return next(key for key, i in simulator.instruments.items() if i.exchange == exchange)


async def angel_streams(ws: ClientConnection, simulator: ExchangeSimulator) -> None:
    """A subscription on ``ws`` gets its snapshot."""
    exchange_type, token = an_instrument(simulator)
    await ws.send(angel.request(angel.SUBSCRIBE, angel.LTP, {exchange_type: [token]}))
    async with asyncio.timeout(WAIT):
        packet = angel.decode(await ws.recv())
    assert (packet.exchange_type, packet.token) == (exchange_type, token)


async def kite_streams(ws: ClientConnection, simulator: ExchangeSimulator) -> None:
    """A subscription on ``ws`` gets its snapshot (past any heartbeat)."""
    token = an_instrument(simulator)
    await ws.send(kite.subscribe_request([token]))
    packets: list[bytes] = []
    async with asyncio.timeout(WAIT):
        while not packets:
            packets = kite.split(await ws.recv())
    assert [kite.token_and_mode(p)[0] for p in packets] == [token]


async def refused_status(client: connect) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with client:
            pass
    return refused.value.response.status_code


async def closed_code(ws: ClientConnection) -> int:
    """The close code ``ws`` ends with, reading whatever comes before."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(WAIT):
            while True:
                await ws.recv()
    return closed.value.rcvd.code


def angel_login(simulator, smart_connect, code: Callable[[], str] = TOTP.now, **account) -> dict:
    login = {"clientCode": CREDENTIALS.client_code, "password": CREDENTIALS.pin} | account
    return smart_connect(simulator.rest_url).generateSession(
        login["clientCode"], login["password"], code()
    )


# Angel One


async def test_smartconnect_logs_in_with_pin_and_totp_and_its_tokens_stream(
    make_simulator, smart_connect
):
    simulator = await make_simulator()
    session = await asyncio.to_thread(angel_login, simulator, smart_connect)

    assert session["status"] is True
    data = session["data"]
    assert data["clientcode"] == CREDENTIALS.client_code  # read back through getProfile
    assert data["jwtToken"].startswith("Bearer ")
    assert data["feedToken"] != CREDENTIALS.feed_token
    async with angel_client(simulator, data["jwtToken"], data["feedToken"]) as ws:
        await angel_streams(ws, simulator)
    # The session's JWT is the WebSocket's whether or not it has its prefix.
    bare = data["jwtToken"].removeprefix("Bearer ")
    async with angel_client(simulator, bare, data["feedToken"]) as ws:
        await angel_streams(ws, simulator)


@pytest.mark.parametrize(
    ("account", "code", "expected"),
    [
        ({}, lambda: TOTP.at(time.time() + 120), ("AB1050", "Invalid totp")),
        ({}, lambda: "12345x", ("AB1050", "Invalid totp")),
        ({"password": "9999"}, TOTP.now, ("AB1007", "Login Id or password is invalid")),
        ({"clientCode": "OTHER"}, TOTP.now, ("AB1007", "Login Id or password is invalid")),
    ],
    ids=["totp-four-steps-ahead", "totp-not-digits", "wrong-pin", "wrong-client-code"],
)
async def test_a_wrong_totp_pin_or_client_code_gets_the_brokers_refusal(
    make_simulator, smart_connect, account, code, expected
):
    simulator = await make_simulator()
    refused = await asyncio.to_thread(angel_login, simulator, smart_connect, code, **account)
    assert refused == {
        "status": False,
        "message": expected[1],
        "errorcode": expected[0],
        "data": None,
    }


async def test_a_totp_code_one_step_either_side_is_accepted(make_simulator):
    simulator = await make_simulator()
    headers = {"X-PrivateKey": CREDENTIALS.api_key}
    async with httpx.AsyncClient(base_url=simulator.rest_url) as http:
        for offset in (-30, 0, 30):
            body = {
                "clientcode": CREDENTIALS.client_code,
                "password": CREDENTIALS.pin,
                "totp": TOTP.at(time.time() + offset),
            }
            reply = await http.post(
                "/rest/auth/angelbroking/user/v1/loginByPassword", json=body, headers=headers
            )
            assert reply.status_code == 200 and reply.json()["status"] is True, offset


async def test_bad_requests_and_a_wrong_api_key_are_refused_clearly(make_simulator):
    simulator = await make_simulator()
    login = "/rest/auth/angelbroking/user/v1/loginByPassword"
    good = {"clientcode": CREDENTIALS.client_code, "password": CREDENTIALS.pin, "totp": TOTP.now()}
    async with httpx.AsyncClient(base_url=simulator.rest_url) as http:
        wrong_key = await http.post(login, json=good, headers={"X-PrivateKey": "wrong"})
        assert wrong_key.status_code == 200
        assert wrong_key.json() == {
            "success": False,
            "message": "Invalid API Key",
            "errorCode": "AG8004",
            "data": "",
        }
        key = {"X-PrivateKey": CREDENTIALS.api_key}
        for body, named in ((b"{", "not JSON"), (b"[]", "not a JSON object"), (b"{}", "totp")):
            reply = await http.post(login, content=body, headers=key)
            assert reply.status_code == 400
            assert reply.json()["status"] is False and reply.json()["errorcode"] == "AB1004"
            assert named in reply.json()["message"]


async def test_generate_token_renews_the_session_and_the_old_jwt_is_refused(
    make_simulator, smart_connect
):
    simulator = await make_simulator()
    client = smart_connect(simulator.rest_url)
    session = await asyncio.to_thread(
        client.generateSession, CREDENTIALS.client_code, CREDENTIALS.pin, TOTP.now()
    )
    first = session["data"]
    renewed = await asyncio.to_thread(client.generateToken, first["refreshToken"])

    assert renewed["status"] is True
    jwt, feed_token = renewed["data"]["jwtToken"], renewed["data"]["feedToken"]
    assert jwt != first["jwtToken"].removeprefix("Bearer ")
    async with angel_client(simulator, jwt, feed_token) as ws:
        await angel_streams(ws, simulator)
    assert await refused_status(angel_client(simulator, first["jwtToken"], feed_token)) == 401
    profile = await asyncio.to_thread(client.getProfile, first["refreshToken"])
    assert profile["status"] is True  # the client now sends the renewed JWT
    # The refresh token goes on renewing; one that was never issued does not.
    again = await asyncio.to_thread(client.generateToken, first["refreshToken"])
    assert again["status"] is True
    never = await asyncio.to_thread(client._postRequest, "api.token", {"refreshToken": "nope"})
    assert never == {
        "status": False,
        "message": "Invalid Refresh Token",
        "errorcode": "AB8050",
        "data": None,
    }


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [(None, ("AG8003", "Token missing")), ("Bearer nope", ("AG8001", "Invalid Token"))],
)
async def test_get_profile_without_a_good_jwt_gets_401(make_simulator, authorization, expected):
    simulator = await make_simulator()
    headers = {"X-PrivateKey": CREDENTIALS.api_key}
    if authorization:
        headers["Authorization"] = authorization
    async with httpx.AsyncClient(base_url=simulator.rest_url) as http:
        reply = await http.get("/rest/secure/angelbroking/user/v1/getProfile", headers=headers)
    assert reply.status_code == 401
    assert reply.json() == {
        "success": False,
        "message": expected[1],
        "errorCode": expected[0],
        "data": "",
    }


async def test_the_backends_child_simulator_takes_the_account_and_serves_its_logins(
    smart_connect,
):
    account = SimulatorCredentials(pin="2468", totp_secret="JBSWY3DPEHPK3PXPJBSWY3DPEH")
    child = SimulatorProcess("angel", 0.0, None, None, account)
    await child.start()
    try:
        assert child.rest == child.url.replace("ws://", "http://").removesuffix("/smart-stream")
        client = smart_connect(child.rest)
        code = pyotp.TOTP(account.totp_secret).now()
        session = await asyncio.to_thread(client.generateSession, account.client_code, "2468", code)
        assert session["status"] is True, session
    finally:
        await child.stop()


# Zerodha Kite


async def request_token(simulator: ExchangeSimulator, api_key: str = CREDENTIALS.api_key) -> str:
    """Kite's login page, followed to the app's redirect URL: the request token it carries."""
    async with httpx.AsyncClient() as http:
        page = await http.get(
            simulator.rest_url + "/connect/login", params={"api_key": api_key, "v": 3}
        )
    assert page.status_code == 302
    location = page.headers["location"]
    assert location.startswith(CREDENTIALS.redirect_url + "?")
    query = parse_qs(urlsplit(location).query)
    assert {name: query[name] for name in ("action", "status")} == {
        "action": ["login"],
        "status": ["success"],
    }
    return query["request_token"][0]


async def test_kiteconnect_generates_a_session_and_its_access_token_streams(make_simulator):
    simulator = await make_simulator(broker="zerodha", max_tokens=None)
    client = KiteConnect(CREDENTIALS.api_key, root=simulator.rest_url)
    token = await request_token(simulator)
    session = await asyncio.to_thread(client.generate_session, token, CREDENTIALS.api_secret)

    assert session["user_id"] == CREDENTIALS.client_code
    assert session["refresh_token"] == ""
    assert session["login_time"].date() == datetime.date.today() and session["public_token"]
    assert client.access_token == session["access_token"] != CREDENTIALS.access_token
    async with kite_client(simulator, session["access_token"]) as ws:
        await kite_streams(ws, simulator)
    # A request token is good once.
    with pytest.raises(TokenException, match="Token is invalid or has expired") as reused:
        await asyncio.to_thread(client.generate_session, token, CREDENTIALS.api_secret)
    assert reused.value.code == 403


async def test_a_wrong_checksum_raises_token_exception_and_leaves_the_token_good(make_simulator):
    simulator = await make_simulator(broker="zerodha", max_tokens=None)
    client = KiteConnect(CREDENTIALS.api_key, root=simulator.rest_url)
    token = await request_token(simulator)

    with pytest.raises(TokenException, match="checksum") as refused:
        await asyncio.to_thread(client.generate_session, token, "not-the-api-secret")
    assert refused.value.code == 403
    wrong_key = KiteConnect("not-the-api-key", root=simulator.rest_url)
    with pytest.raises(TokenException, match="api_key"):
        await asyncio.to_thread(wrong_key.generate_session, token, CREDENTIALS.api_secret)
    with pytest.raises(InputException, match="checksum"):
        await asyncio.to_thread(
            client._post,
            "api.token",
            params={"api_key": CREDENTIALS.api_key, "request_token": token},
        )
    session = await asyncio.to_thread(client.generate_session, token, CREDENTIALS.api_secret)
    async with kite_client(simulator, session["access_token"]) as ws:
        await kite_streams(ws, simulator)


async def test_the_login_page_refuses_an_unknown_api_key(make_simulator):
    simulator = await make_simulator(broker="zerodha", max_tokens=None)
    async with httpx.AsyncClient() as http:
        page = await http.get(simulator.rest_url + "/connect/login?api_key=nope&v=3")
    assert page.status_code == 400
    assert "api_key" in page.text and page.headers["content-type"].startswith("text/html")


# Sessions that expire


async def test_expired_angel_sessions_close_connections_and_their_tokens_get_401(
    make_simulator, smart_connect
):
    simulator = await make_simulator()
    client = smart_connect(simulator.rest_url)
    first = (
        await asyncio.to_thread(
            client.generateSession, CREDENTIALS.client_code, CREDENTIALS.pin, TOTP.now()
        )
    )["data"]
    fixed = angel_client(simulator, CREDENTIALS.auth_token, CREDENTIALS.feed_token)
    logged_in = angel_client(simulator, first["jwtToken"], first["feedToken"])
    async with fixed as by_fixed_tokens, logged_in as by_session:
        await angel_streams(by_fixed_tokens, simulator)
        await angel_streams(by_session, simulator)
        await simulator.expire_sessions()
        assert simulator.connections == []
        assert await closed_code(by_fixed_tokens) == await closed_code(by_session) == 1008

    for jwt, feed_token in (
        (CREDENTIALS.auth_token, CREDENTIALS.feed_token),
        (first["jwtToken"], first["feedToken"]),
    ):
        with pytest.raises(InvalidStatus) as refused:
            async with angel_client(simulator, jwt, feed_token):
                pass
        assert refused.value.response.status_code == 401
        assert refused.value.response.headers["x-error-message"] == "Invalid Auth token"
    assert (await asyncio.to_thread(client.getProfile, first["refreshToken"]))["errorCode"] == (
        "AG8001"
    )
    renewal = await asyncio.to_thread(client._postRequest, "api.token", first)
    assert renewal["errorcode"] == "AB8050"

    again = (await asyncio.to_thread(angel_login, simulator, smart_connect))["data"]
    async with angel_client(simulator, again["jwtToken"], again["feedToken"]) as ws:
        await angel_streams(ws, simulator)


async def test_expired_kite_sessions_close_connections_and_their_tokens_get_403(make_simulator):
    simulator = await make_simulator(broker="zerodha", max_tokens=None)
    client = KiteConnect(CREDENTIALS.api_key, root=simulator.rest_url)
    pending = await request_token(simulator)
    token = await request_token(simulator)
    first = await asyncio.to_thread(client.generate_session, token, CREDENTIALS.api_secret)
    fixed = kite_client(simulator, CREDENTIALS.access_token)
    async with fixed as by_fixed_token, kite_client(simulator, first["access_token"]) as by_session:
        await kite_streams(by_fixed_token, simulator)
        await kite_streams(by_session, simulator)
        await simulator.expire_sessions()
        assert await closed_code(by_fixed_token) == await closed_code(by_session) == 1008

    for access_token in (CREDENTIALS.access_token, first["access_token"]):
        assert await refused_status(kite_client(simulator, access_token)) == 403
    with pytest.raises(TokenException):  # a request token issued before the end is no good
        await asyncio.to_thread(client.generate_session, pending, CREDENTIALS.api_secret)

    again = await asyncio.to_thread(
        client.generate_session, await request_token(simulator), CREDENTIALS.api_secret
    )
    async with kite_client(simulator, again["access_token"]) as ws:
        await kite_streams(ws, simulator)


# Silent connections


async def test_a_muted_smartstream_connection_answers_pings_but_sends_no_ticks(make_simulator):
    simulator = await make_simulator(ticks_per_second=200)
    keys = [key for key, i in simulator.instruments.items() if i.exchange == "NSE"][:5]
    tokens: dict[int, list[str]] = {}
    for exchange_type, token in keys:
        tokens.setdefault(exchange_type, []).append(token)
    async with angel_client(simulator, CREDENTIALS.auth_token, CREDENTIALS.feed_token) as ws:
        await ws.send(angel.request(angel.SUBSCRIBE, angel.QUOTE, tokens))
        async with asyncio.timeout(WAIT):
            ticked = 0
            while ticked < 50:
                ticked += isinstance(await ws.recv(), bytes)
        (connection,) = simulator.connections
        simulator.mute(connection.id)

        await ws.send("ping")  # whatever was sent before the mute comes first
        async with asyncio.timeout(WAIT):
            while await ws.recv() != "pong":
                pass
        # A new subscription would be answered with its snapshot at once.
        other_type, other_token = an_instrument(simulator, "BSE")
        await ws.send(angel.request(angel.SUBSCRIBE, angel.LTP, {other_type: [other_token]}))
        loop = asyncio.get_running_loop()
        quiet_until = loop.time() + 0.5  # 500 ticks' worth at this rate
        while loop.time() < quiet_until:
            await asyncio.wait_for(await ws.ping(), WAIT)
            await ws.send("ping")
            assert await asyncio.wait_for(ws.recv(), WAIT) == "pong"
        assert simulator.connections[0].token_count == 6  # requests are still served
    with pytest.raises(KeyError):
        simulator.mute(connection.id)


async def test_a_muted_kite_connection_keeps_its_heartbeat_but_sends_no_ticks(make_simulator):
    simulator = await make_simulator(broker="zerodha", max_tokens=None, ticks_per_second=200)
    tokens = list(simulator.instruments)[:5]
    async with kite_client(simulator, CREDENTIALS.access_token) as ws:
        await ws.send(kite.subscribe_request(tokens))
        async with asyncio.timeout(WAIT):
            while len(kite.split(await ws.recv())) < 2:
                pass
        simulator.mute(simulator.connections[0].id)
        await ws.send("not a request")  # its error frame comes after whatever came before
        async with asyncio.timeout(WAIT):
            while not isinstance(await ws.recv(), str):
                pass
            # Up to the second heartbeat, a second on at least, nothing but heartbeats.
            assert [await ws.recv(), await ws.recv()] == [kite.HEARTBEAT, kite.HEARTBEAT]
        await asyncio.wait_for(await ws.ping(), WAIT)
