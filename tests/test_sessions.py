"""Broker sessions: the real backend process against the standalone simulator.

The simulator plays the broker's logins and ends its sessions on command
(``expire_sessions``), as the real brokers do each morning; the backend logs in again by
itself, or says that the trader must.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from logins import kite_values
from proxy_client import BusMonitor, Client, now_ms
from simulator_process import StandaloneSimulator

from backend.brokers import BROKERS
from backend.brokers.session import CredentialError
from backend.brokers.zerodha import login as kite_login
from backend.security.secret import Secret
from backend.simulator import SimulatorCredentials
from desktop.settings.redirect_catcher import RedirectCatcher

ACCOUNT = SimulatorCredentials()


@contextlib.asynccontextmanager
async def watching(ready: dict) -> AsyncIterator[tuple[BusMonitor, Client]]:
    """The backend of ``ready``'s bus and a client of its API, both closed afterwards."""
    bus = BusMonitor(ready["zmq"])
    client = await Client.open(ready["ws"])
    try:
        yield bus, client
    finally:
        await client.close()
        bus.close()


SYMBOLS = [("SBIN", "NSE"), ("INFY", "NSE"), ("RELIANCE", "NSE")]
WRONG_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
WRONG_PIN = "97531"


@pytest.fixture
async def simulators(tmp_path):
    started: list[StandaloneSimulator] = []

    async def start(*args: str) -> StandaloneSimulator:
        simulator = await StandaloneSimulator.start(tmp_path, "--ticks-per-second", "5", *args)
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        await simulator.stop()


def angel(simulator: StandaloneSimulator, **settings: str) -> dict[str, str]:
    """Settings that log in to the simulator's Angel One account with its PIN and TOTP."""
    return {
        "BROKER": "angel",
        "ANGEL_WS_URL": simulator.ready["url"],
        "ANGEL_LOGIN_URL": simulator.ready["rest"],
        "ANGEL_CLIENT_CODE": ACCOUNT.client_code,
        "ANGEL_API_KEY": ACCOUNT.api_key,
        "ANGEL_PIN": ACCOUNT.pin,
        "ANGEL_TOTP_SECRET": ACCOUNT.totp_secret,
        "INSTRUMENT_MASTER": simulator.ready["master"],
        **settings,
    }


def kite(simulator: StandaloneSimulator, access_token: str) -> dict[str, str]:
    """Settings that open the simulator's Kite feed with ``access_token``."""
    return {
        "BROKER": "zerodha",
        "KITE_API_KEY": ACCOUNT.api_key,
        "KITE_ACCESS_TOKEN": access_token,
        "KITE_WS_URL": simulator.ready["url"],
        "INSTRUMENT_MASTER": simulator.ready["master"],
    }


async def expired_reason(bus: BusMonitor, containing: str) -> str:
    """Wait until a connection on ``SYS.POOL`` is ``session_expired`` for a reason that
    contains ``containing`` (case aside); that reason."""
    found: list[str] = []

    def expired(topic: str, payload: dict) -> bool:
        states = payload.get("connections", []) if topic == "SYS.POOL" else []
        found.extend(
            c["reason"]
            for c in states
            if c["state"] == "session_expired" and containing.lower() in c["reason"].lower()
        )
        return bool(found)

    await bus.until(expired, within=20)
    return found[0]


async def fresh_ticks(client: Client, symbols, after_ms: float, within: float) -> None:
    """Wait until each symbol has ticked since ``after_ms``."""
    waiting = {symbol for symbol, _ in symbols}
    async with asyncio.timeout(within):
        while waiting:
            tick = await client.ticks.get()
            if tick["data"]["timestamp"] > after_ms:
                waiting.discard(tick["symbol"])


async def notice(client: Client, within: float = 10.0) -> dict:
    """The next message of the client's that is not a tick."""
    return await client.reply(within)


async def test_an_angel_login_streams_and_logs_in_again_when_the_session_ends(simulators, backends):
    simulator = await simulators()
    backend, ready = await backends(**angel(simulator))
    assert ready["event"] == "ready", ready
    published: list[str] = []
    async with watching(ready) as (bus, client):
        assert (await client.subscribe(SYMBOLS, mode=2))["status"] == "success"
        await fresh_ticks(client, SYMBOLS, 0, 15)

        ended = now_ms()
        assert (await simulator.command(command="expire_sessions"))["event"] != "error"
        down = await notice(client)
        assert down["type"] == "error" and down["code"] == "BROKER_CONNECTION_ERROR", down
        await fresh_ticks(client, SYMBOLS, ended, 10)

        def relogged(topic: str, payload: dict) -> bool:
            published.append(json.dumps(payload))
            return topic == "SYS.POOL" and all(
                c["state"] == "connected" for c in payload["connections"]
            )

        await bus.until(relogged)
    text = backend.stderr.read_text()
    assert len(re.findall(r"Angel One: logged in as FEEDPOOL", text)) == 2, text
    everything = text + "".join(published)
    for secret in (ACCOUNT.pin, ACCOUNT.totp_secret, ACCOUNT.api_key):
        assert secret not in everything


async def seconds_of_statistics(bus: BusMonitor) -> None:
    """Wait for three more ``SYS.POOL`` statistics: two seconds at least, in which a session
    that retried its login would have tried twice more (after 1 s, then 2 s)."""
    seen = 0

    def three_more(topic: str, payload: dict) -> bool:
        nonlocal seen
        seen += topic == "SYS.POOL"
        return seen == 3

    await bus.until(three_more)


async def test_a_wrong_totp_secret_is_tried_once_and_named_when_the_session_ends(
    simulators, backends
):
    simulator = await simulators()
    backend, ready = await backends(
        **angel(
            simulator,
            ANGEL_TOTP_SECRET=WRONG_TOTP_SECRET,
            ANGEL_FEED_TOKEN=ACCOUNT.feed_token,
            ANGEL_AUTH_TOKEN=ACCOUNT.auth_token,
        )
    )
    assert ready["event"] == "ready", ready
    async with watching(ready) as (bus, client):
        assert (await client.subscribe(SYMBOLS[:1], mode=1))["status"] == "success"
        await client.tick(within=15)
        await simulator.command(command="expire_sessions")
        reason = await expired_reason(bus, "check ANGEL_TOTP_SECRET")
        assert "Invalid totp (AB1050)" in reason, reason
        down = await notice(client)
        assert down["code"] == "BROKER_CONNECTION_ERROR", down
        info = await client.request({"action": "get_broker_info"})
        assert info["adapter_status"] == "session_expired", info
        await seconds_of_statistics(bus)
    # The login at start only: the pasted tokens served until the session ended.
    assert simulator.log.read_text().count("refused, wrong TOTP code") == 1
    text = backend.stderr.read_text()
    assert text.count("check ANGEL_TOTP_SECRET") == 1, text
    assert WRONG_TOTP_SECRET not in text


async def test_a_wrong_pin_at_start_is_tried_once_and_reported(simulators, backends):
    simulator = await simulators()
    backend, ready = await backends(**angel(simulator, ANGEL_PIN=WRONG_PIN))
    assert ready["event"] == "ready", ready
    fix = "check ANGEL_CLIENT_CODE and ANGEL_PIN in the settings"
    async with watching(ready) as (bus, client):
        problems: list[str] = []

        def reported(topic: str, payload: dict) -> bool:
            problems.append(payload.get("session_problem", "") if topic == "SYS.POOL" else "")
            return fix in problems[-1]

        await bus.until(reported)
        assert "Login Id or password is invalid (AB1007)" in problems[-1], problems
        refused = await client.subscribe(SYMBOLS[:1], mode=1)
        assert refused["status"] != "success" and fix in json.dumps(refused), refused
        await seconds_of_statistics(bus)
    assert simulator.log.read_text().count("refused, wrong client code or PIN") == 1
    text = backend.stderr.read_text()
    assert text.count(fix) == 1, text
    assert WRONG_PIN not in text


async def test_a_muted_connection_is_healed(simulators, backends):
    simulator = await simulators()
    backend, ready = await backends(
        **angel(simulator, STALE_FEED_SECONDS="2"),
    )
    async with watching(ready) as (bus, client):
        assert (await client.subscribe(SYMBOLS, mode=1))["status"] == "success"
        await fresh_ticks(client, SYMBOLS, 0, 15)
        [connection] = (await simulator.command(command="connections"))["connections"]
        assert (await simulator.command(command="mute", connection=connection["id"]))[
            "event"
        ] != "error"
        muted = now_ms()
        await fresh_ticks(client, SYMBOLS, muted + 500, 2 + 10)
        await bus.until(
            lambda topic, payload: (
                topic == "SYS.POOL" and payload["connections"][0]["feeds_healed"] >= 1
            )
        )
    assert "no tick for" in backend.stderr.read_text()


async def test_the_kite_login_through_the_login_page_and_the_local_callback(simulators, backends):
    login = BROKERS["zerodha"].browser_login
    redirects: asyncio.Queue[str] = asyncio.Queue()
    async with RedirectCatcher("http://127.0.0.1:0/kite", redirects.put_nowait) as catcher:
        simulator = await simulators("--broker", "zerodha", "--redirect-url", catcher.url)
        values = kite_values(ACCOUNT, simulator.ready["rest"])
        async with httpx.AsyncClient(follow_redirects=True) as browser:
            assert (await browser.get(await login.page(values))).status_code == 200
        redirect = await asyncio.wait_for(redirects.get(), 10)
    result = await login.finish(values, redirect)
    assert result.user_id == ACCOUNT.client_code
    access_token = result.saved["KITE_ACCESS_TOKEN"]

    backend, ready = await backends(**kite(simulator, access_token))
    assert ready["event"] == "ready", ready
    client = await Client.open(ready["ws"])
    try:
        assert (await client.subscribe(SYMBOLS[:1], mode=2))["status"] == "success"
        await client.tick(within=15, symbol="SBIN")
    finally:
        await client.close()
    text = backend.stderr.read_text()
    for secret in (access_token, ACCOUNT.api_key, ACCOUNT.api_secret):
        assert secret not in text


@pytest.mark.parametrize(
    ("api_key", "api_secret", "expected"),
    [
        (ACCOUNT.api_key, "not-the-secret", "Invalid `checksum`. — check KITE_API_SECRET in"),
        ("not-the-key", ACCOUNT.api_secret, "Invalid `api_key`. — check KITE_API_KEY in"),
    ],
)
async def test_a_wrong_kite_key_or_secret_is_refused_in_kites_words(
    simulators, api_key, api_secret, expected
):
    simulator = await simulators("--broker", "zerodha")
    with pytest.raises(CredentialError, match="refused the login") as refused:
        await kite_login.exchange(
            Secret(api_key),
            Secret(api_secret),
            Secret("no-such-request-token"),
            simulator.ready["rest"],
        )
    assert expected in str(refused.value)


def test_a_pasted_redirect_url_gives_its_request_token():
    url = "http://127.0.0.1:5010/kite?action=login&type=login&status=success&request_token=abc"
    assert kite_login.request_token_from(url).reveal() == "abc"
    with pytest.raises(kite_login.LoginError, match="no request_token"):
        kite_login.request_token_from("http://127.0.0.1:5010/kite?status=cancelled")


async def test_an_ended_kite_session_waits_for_the_trader_without_dialling(simulators, backends):
    simulator = await simulators("--broker", "zerodha")
    backend, ready = await backends(**kite(simulator, ACCOUNT.access_token))
    async with watching(ready) as (bus, client):
        assert (await client.subscribe(SYMBOLS[:1], mode=1))["status"] == "success"
        await client.tick(within=15)
        await simulator.command(command="expire_sessions")
        assert "HTTP 403" in await expired_reason(bus, "log in again")
        await seconds_of_statistics(bus)
    assert simulator.log.read_text().count("refused connection from") == 1
    assert ACCOUNT.access_token not in backend.stderr.read_text()
