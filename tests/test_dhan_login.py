"""Dhan's logins against the simulator's REST endpoints: the official client's consent flow
(dhanhq 2.3.0's ``DhanLogin``, its class attributes pointed at the simulator) and FeedPool's
(the broker's browser login, over httpx), a wrong API secret refused as Dhan refuses it, and
the session's ``RenewToken``: before the token expires, and refused once it has."""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import requests
from dhanhq import DhanLogin
from proxy_client import eventually

from backend.brokers import BROKERS
from backend.brokers.dhan.adapter import DhanAdapter, DhanCredentials
from backend.brokers.dhan.login import RENEW_BEFORE_EXPIRY, DhanSession, token_expiry
from backend.brokers.dhan.simulated_logins import TOKEN_SECONDS, access_token
from backend.brokers.session import CredentialError, LoginError
from backend.feed import CONNECTED, LTP
from backend.runtime.settings import Settings
from backend.security.secret import Secret
from backend.simulator import ExchangeSimulator, SimulatorCredentials

DHAN = BROKERS["dhan"]
ACCOUNT = SimulatorCredentials()
WRONG_SECRET = "not-the-api-secret"
WAIT = 10.0


def settings(simulator: ExchangeSimulator, **changed: str) -> dict:
    """The Dhan settings of the simulator's account, as the backend reads them."""
    values = DHAN.simulator_settings(simulator.credentials, simulator.rest_url)
    return Settings().replace(BROKER="dhan", **{**values, **changed}).broker_values


def redirected_token_id(page: str) -> str:
    """What the trader's browser does: open the login page and follow Dhan back to the API
    key's redirect URL, whose ``tokenId`` is returned."""
    response = requests.get(page, allow_redirects=False, timeout=WAIT)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(ACCOUNT.redirect_url)
    return parse_qs(urlsplit(location).query)["tokenId"][0]


# 1. The official client's consent flow


def official_login(app_secret: str, opened: list[str]) -> dict:
    """The official client's three steps and a renewal; the browser it would open is
    :func:`redirected_token_id`."""
    login = DhanLogin(ACCOUNT.client_code)
    login.generate_login_session(ACCOUNT.api_key, app_secret)
    token_id = redirected_token_id(opened[-1])
    answer = login.consume_token_id(token_id, ACCOUNT.api_key, app_secret)
    renewed = login.renew_token(answer["accessToken"])
    return {"session": answer, "renewed": renewed}


async def test_the_official_clients_consent_flow_logs_in_and_renews(make_simulator, monkeypatch):
    simulator = await make_simulator(broker="dhan", max_tokens=None)
    monkeypatch.setattr(DhanLogin, "AUTH_BASE_URL", simulator.rest_url)
    monkeypatch.setattr(DhanLogin, "API_BASE_URL", simulator.rest_url + "/v2")
    opened: list[str] = []
    monkeypatch.setattr("dhanhq.auth.webbrowser.open", opened.append)

    answers = await asyncio.to_thread(official_login, ACCOUNT.api_secret, opened)

    assert opened[0].startswith(f"{simulator.rest_url}/login/consentApp-login?consentAppId=")
    session = answers["session"]
    assert session["dhanClientId"] == ACCOUNT.client_code
    assert {"dhanClientName", "dhanClientUcc", "givenPowerOfAttorney", "expiryTime"} <= set(session)
    renewed = answers["renewed"]["accessToken"]
    assert renewed != session["accessToken"]
    assert token_expiry(Secret(renewed)) == pytest.approx(time.time() + TOKEN_SECONDS, abs=60)
    # The renewed token opens the feed; the one it replaced is expired.
    await DhanAdapter.check(simulator.url, DhanCredentials(ACCOUNT.client_code, Secret(renewed)))
    assert simulator.logins.verdict(ACCOUNT.client_code, session["accessToken"]) == 807
    assert simulator.logins.verdict(ACCOUNT.client_code, renewed) is None


async def test_the_official_client_is_refused_a_consent_for_a_wrong_secret(
    make_simulator, monkeypatch
):
    simulator = await make_simulator(broker="dhan", max_tokens=None)
    monkeypatch.setattr(DhanLogin, "AUTH_BASE_URL", simulator.rest_url)
    opened: list[str] = []
    monkeypatch.setattr("dhanhq.auth.webbrowser.open", opened.append)

    with pytest.raises(Exception, match="DH-901") as refused:
        await asyncio.to_thread(official_login, WRONG_SECRET, opened)

    assert "Failed to generate consent" in str(refused.value) and not opened


# 2. FeedPool's browser login


async def test_the_browser_login_saves_a_token_that_opens_the_feed(make_simulator):
    simulator = await make_simulator(broker="dhan", max_tokens=None)
    values = settings(simulator, DHAN_ACCESS_TOKEN="")
    login = DHAN.browser_login

    page = await login.page(values)
    token_id = await asyncio.to_thread(redirected_token_id, page)
    result = await login.finish(values, f"{ACCOUNT.redirect_url}?tokenId={token_id}")

    assert set(result.saved) == {"DHAN_ACCESS_TOKEN", "DHAN_CLIENT_ID"}
    assert result.saved["DHAN_CLIENT_ID"] == result.user_id == ACCOUNT.client_code
    assert login.redirect_setting == "DHAN_REDIRECT_URL"
    assert {"DHAN_CLIENT_ID", "DHAN_API_KEY", "DHAN_API_SECRET"} == set(login.required)
    token = Secret(result.saved["DHAN_ACCESS_TOKEN"])
    await DhanAdapter.check(simulator.url, DhanCredentials(ACCOUNT.client_code, token))
    with pytest.raises(LoginError, match="Invalid tokenId") as reused:  # a token ID serves once
        await login.finish(values, f"{ACCOUNT.redirect_url}?tokenId={token_id}")
    assert not isinstance(reused.value, CredentialError)  # not the settings' fault


async def test_a_wrong_secret_is_refused_naming_the_settings_and_showing_none(make_simulator):
    simulator = await make_simulator(broker="dhan", max_tokens=None)
    values = settings(simulator, DHAN_API_SECRET=WRONG_SECRET)

    with pytest.raises(CredentialError) as refused:
        await DHAN.browser_login.page(values)

    message = str(refused.value)
    assert "DH-901" in message and "DHAN_API_SECRET" in message
    assert WRONG_SECRET not in message and ACCOUNT.api_key not in message


async def test_a_redirect_without_a_token_id_says_what_to_copy(make_simulator):
    simulator = await make_simulator(broker="dhan", max_tokens=None)
    with pytest.raises(LoginError, match="carries no tokenId"):
        await DHAN.browser_login.finish(settings(simulator), ACCOUNT.redirect_url)


async def test_the_login_page_is_dhans_for_a_consent_it_made(make_simulator):
    simulator = await make_simulator(broker="dhan", max_tokens=None)
    page = await DHAN.browser_login.page(settings(simulator))
    async with httpx.AsyncClient() as client:
        unknown = await client.get(page.rsplit("=", 1)[0] + "=not-a-consent")
    assert unknown.status_code == 400


# 3. The session: RenewToken


async def test_a_token_is_renewed_before_it_expires(master, caplog):
    expiring, _ = access_token(ACCOUNT.client_code, time.time() - TOKEN_SECONDS + 600)
    account = SimulatorCredentials(access_token=expiring)
    async with ExchangeSimulator(master, account, broker="dhan") as simulator:
        values = settings(simulator)
        session = DhanSession(values["DHAN_API_URL"], ACCOUNT.client_code, Secret(expiring))
        with caplog.at_level(logging.INFO, logger="feedpool.dhan"):
            await session.begin()
            await eventually(lambda: session.credentials.access_token != Secret(expiring), WAIT)
        renewed = session.credentials
        assert simulator.logins.verdict(ACCOUNT.client_code, expiring) == 807
        assert simulator.logins.verdict(ACCOUNT.client_code, renewed.access_token.reveal()) is None
        expiry = token_expiry(renewed.access_token)
        assert expiry - RENEW_BEFORE_EXPIRY > time.time() + 3600  # the next renewal waits
        assert not [r for r in caplog.records if expiring in r.getMessage()]
        await session.close()


async def test_a_token_dhan_expired_cannot_be_renewed_and_is_not_tried_again(make_simulator):
    simulator = await make_simulator(broker="dhan", max_tokens=None)
    values = settings(simulator)
    session = DhanSession(
        values["DHAN_API_URL"], ACCOUNT.client_code, values["DHAN_ACCESS_TOKEN"],
        first_delay=0.01, max_delay=0.02,
    )  # fmt: skip
    await session.begin()
    refused = session.credentials
    await simulator.expire_sessions()

    renewal = asyncio.ensure_future(session.renewed(refused))
    await eventually(lambda: session.problem, WAIT)

    assert "Dhan refused to renew the access token" in session.problem
    assert "DHAN_ACCESS_TOKEN" in session.problem and ACCOUNT.access_token not in session.problem
    assert not session.can_renew and not renewal.done()
    renewal.cancel()
    await session.close()


async def test_a_connection_reopens_with_the_renewed_token(master):
    """The token is renewed while a connection is open (Dhan expires the old one); the
    connection, dropped, opens again with the new token."""
    soon = time.time() + RENEW_BEFORE_EXPIRY + 1.0  # renewed about a second from now
    expiring, _ = access_token(ACCOUNT.client_code, soon - TOKEN_SECONDS)
    account = SimulatorCredentials(access_token=expiring)
    async with ExchangeSimulator(master, account, broker="dhan") as simulator:
        values = settings(simulator)
        session = DhanSession(values["DHAN_API_URL"], ACCOUNT.client_code, Secret(expiring))
        await session.begin()
        adapter = DhanAdapter(1, simulator.url, session, reconnect_first_delay=0.01)
        await adapter.connect()
        first = simulator.connections[0].id
        await eventually(lambda: session.credentials.access_token != Secret(expiring), WAIT)

        await simulator.drop(first)

        await eventually(lambda: [c.id for c in simulator.connections] not in ([], [first]), WAIT)
        sbin = next(i for i in simulator.instruments.values() if i.symbol == "SBIN")
        assert await adapter.hold([sbin], LTP) == []
        await eventually(lambda: adapter.ticks_received > 0, WAIT)  # a refused one never ticks
        assert adapter.state == CONNECTED
        assert simulator.logins.verdict(ACCOUNT.client_code, expiring) == 807
        await adapter.close()
        await session.close()
