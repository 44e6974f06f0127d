"""The Noren vendors' logins against the simulator: the official OAuth client (NorenRestApiOAuth,
module ``NorenRestApiPy.NorenApi``) trades its code at ``GenAcsTok``; ``QuickAuth`` and
Flattrade's ``apitoken`` take the bodies their official clients send; FeedPool's sessions and
browser logins log in, renew, and refuse with errors naming the setting and showing no secret.

The legacy client NorenRestApiPy 0.0.22 ships the same module file as the OAuth client and
cannot be installed beside it, so ``QuickAuth`` is sent here as it sends it: the raw body
``jData=<json>``, no Content-Type, the route after a ``//``.

The official client is synchronous (requests), so it runs in a thread.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import httpx
import pyotp
import pytest
from NorenRestApiPy.NorenApi import NorenApi

from backend.brokers import BROKERS
from backend.brokers.errors import SessionExpiredError
from backend.brokers.noren import oauth
from backend.brokers.noren.login import sha256
from backend.brokers.noren.protocol import LEGACY_CONNECT, OAUTH_CONNECT
from backend.brokers.noren.vendors import VENDORS
from backend.brokers.session import CredentialError, LoginError
from backend.security.secret import Secret
from backend.simulator import ExchangeSimulator, SimulatorCredentials

ACCOUNT = SimulatorCredentials()
WAIT = 10.0
SECRETS = (ACCOUNT.password, ACCOUNT.api_secret, ACCOUNT.totp_secret, ACCOUNT.access_token)


def settings_of(simulator: ExchangeSimulator, **changed: str) -> dict[str, Any]:
    """The settings of the simulator's vendor as the backend reads them: every setting, secrets
    as :class:`Secret`, ``changed`` replacing values."""
    broker = simulator.broker
    values = broker.simulator_settings(simulator.credentials, simulator.rest_url) | changed
    return {
        s.name: Secret(values.get(s.name, s.default))
        if s.kind == "secret"
        else values.get(s.name, s.default)
        for s in broker.settings
    }


async def redirected(page: str) -> str:
    """Where the vendor's login page sends the browser (the simulator logs in at once)."""
    async with httpx.AsyncClient() as client:
        response = await client.get(page)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def code_of(location: str) -> str:
    return httpx.URL(location).params["code"]


def session_of(values: Mapping[str, Any], vendor: str) -> Any:
    return BROKERS[vendor].session(values)


def shown_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


async def test_the_official_oauth_client_trades_its_code_for_an_access_token(make_simulator):
    simulator = await make_simulator(broker="shoonya")
    rest = simulator.rest_url
    api = NorenApi(host=f"{rest}/NorenWClientAPI", websocket=simulator.url)
    page = api.getOAuthURL(f"{rest}/OAuthlogin/authorize/oauth", ACCOUNT.oauth_client_id)
    code = code_of(await redirected(page))

    answer = await asyncio.to_thread(
        api.getAccessToken, code, ACCOUNT.api_secret, ACCOUNT.oauth_client_id, ACCOUNT.client_code
    )

    assert answer is not None
    token, user, refresh, account = answer
    assert (user, account) == (ACCOUNT.client_code, ACCOUNT.client_code) and refresh
    assert simulator.logins.accepts(ACCOUNT.client_code, token, OAUTH_CONNECT)
    again = await asyncio.to_thread(
        api.getAccessToken, code, ACCOUNT.api_secret, ACCOUNT.oauth_client_id, ACCOUNT.client_code
    )
    assert again is None  # a code is traded once


async def test_the_official_oauth_client_is_refused_for_a_wrong_secret(make_simulator):
    simulator = await make_simulator(broker="zebu")
    rest = simulator.rest_url
    api = NorenApi(host=f"{rest}/NorenWClientAPI/", websocket=simulator.url)  # a `//` route
    code = code_of(await redirected(f"{rest}/OAuthlogin/authorize/oauth?client_id=FEEDPOOL_U"))

    answer = await asyncio.to_thread(
        api.getAccessToken, code, "not-the-secret", ACCOUNT.oauth_client_id, ACCOUNT.client_code
    )

    assert answer is None
    async with httpx.AsyncClient() as client:
        refused = await client.post(f"{rest}/NorenWClientAPI/GenAcsTok", content=b"code=1")
    assert refused.json()["stat"] == "Not_Ok"
    assert refused.json()["emsg"] == "Invalid Input :  jData is Missing."


def quickauth_body(**changed: str) -> str:
    """QuickAuth's body as NorenRestApiPy 0.0.22's ``login`` builds it."""
    values = {
        "source": "API",
        "apkversion": "1.0.0",
        "uid": ACCOUNT.client_code,
        "pwd": sha256(ACCOUNT.password),
        "factor2": pyotp.TOTP(ACCOUNT.totp_secret).now(),
        "vc": ACCOUNT.vendor_code,
        "appkey": sha256(f"{ACCOUNT.client_code}|{ACCOUNT.api_secret}"),
        "imei": "abc1234",
    } | changed
    return "jData=" + json.dumps(values)


async def test_quickauth_as_the_legacy_client_sends_it_gives_a_susertoken(make_simulator):
    simulator = await make_simulator(broker="zebu")
    url = f"{simulator.rest_url}/NorenWClientTP//QuickAuth"
    async with httpx.AsyncClient() as client:
        good = await client.post(url, content=quickauth_body().encode())
        wrong = await client.post(url, content=quickauth_body(pwd=sha256("wrong")).encode())
    assert "content-type" not in good.request.headers

    answer = good.json()
    assert answer["stat"] == "Ok" and answer["actid"] == ACCOUNT.client_code
    assert simulator.logins.accepts(ACCOUNT.client_code, answer["susertoken"], LEGACY_CONNECT)
    assert not simulator.logins.accepts(ACCOUNT.client_code, answer["susertoken"], OAUTH_CONNECT)
    assert wrong.json()["stat"] == "Not_Ok"
    assert wrong.json()["emsg"] == "Invalid Input : Wrong Password"
    assert wrong.json()["request_time"]


async def test_flattrades_apitoken_takes_the_checksum_of_key_code_and_secret(make_simulator):
    simulator = await make_simulator(broker="flattrade")
    rest = simulator.rest_url
    code = code_of(await redirected(f"{rest}/?app_key={ACCOUNT.api_key}"))
    checksum = sha256(ACCOUNT.api_key + code + ACCOUNT.api_secret)
    body = {"api_key": ACCOUNT.api_key, "request_code": code, "api_secret": checksum}
    async with httpx.AsyncClient() as client:
        good = await client.post(f"{rest}/trade/apitoken", json=body)
        spent = await client.post(f"{rest}/trade/apitoken", json=body)

    answer = good.json()
    assert (answer["stat"], answer["client"], answer["emsg"]) == ("Ok", ACCOUNT.client_code, "")
    assert simulator.logins.accepts(ACCOUNT.client_code, answer["token"], OAUTH_CONNECT)
    assert spent.json()["stat"] == "Not_Ok"


@pytest.mark.parametrize("vendor", ["shoonya", "flattrade", "zebu"])
async def test_the_browser_login_saves_a_token_the_feed_accepts(make_simulator, vendor):
    simulator = await make_simulator(broker=vendor)
    login = oauth.browser_login(VENDORS[vendor])
    values = settings_of(simulator)

    result = await login.finish(values, await redirected(await login.page(values)))

    prefix = VENDORS[vendor].prefix
    assert result.user_id == ACCOUNT.client_code
    assert result.saved[f"{prefix}_USER_ID"] == ACCOUNT.client_code
    token = result.saved[f"{prefix}_ACCESS_TOKEN"]
    assert simulator.logins.accepts(ACCOUNT.client_code, token, OAUTH_CONNECT)
    pasted = result.saved | {f"{prefix}_PASSWORD": ""}  # Zebu's QuickAuth off
    session = session_of(settings_of(simulator, **pasted), vendor)
    await session.begin()
    assert session.credentials.token.reveal() == token
    await BROKERS[vendor].check(simulator.url, session.credentials)  # `t:"a"` with the token
    await simulator.expire_sessions()
    assert not simulator.logins.accepts(ACCOUNT.client_code, token, OAUTH_CONNECT)


@pytest.mark.parametrize(
    ("vendor", "wrong", "named"),
    [
        ("shoonya", {"SHOONYA_SECRET_KEY": "not-the-secret"}, "SHOONYA_SECRET_KEY"),
        ("flattrade", {"FLATTRADE_API_SECRET": "not-the-secret"}, "FLATTRADE_API_SECRET"),
    ],
)
async def test_a_browser_login_refused_for_its_secret_names_the_setting(
    make_simulator, vendor, wrong, named
):
    simulator = await make_simulator(broker=vendor)
    login = oauth.browser_login(VENDORS[vendor])
    values = settings_of(simulator, **wrong)
    redirect = await redirected(await login.page(values))

    with pytest.raises(CredentialError, match=f"check {named} in the settings") as refused:
        await login.finish(values, redirect)

    assert "refused to log in" in str(refused.value)
    shown_no_secret(str(refused.value))
    assert "not-the-secret" not in str(refused.value)


async def test_a_browser_login_with_a_spent_or_missing_code_says_to_log_in_again(make_simulator):
    simulator = await make_simulator(broker="shoonya")
    login = oauth.browser_login(VENDORS["shoonya"])
    values = settings_of(simulator)
    redirect = await redirected(await login.page(values))
    await login.finish(values, redirect)

    with pytest.raises(LoginError, match="Invalid Auth Code") as spent:
        await login.finish(values, redirect)
    assert not isinstance(spent.value, CredentialError)
    with pytest.raises(LoginError, match="carries no code"):
        await login.finish(values, "http://127.0.0.1:5010/shoonya/callback?state=1")


async def test_a_quickauth_session_logs_in_and_logs_in_again_when_the_session_ends(
    make_simulator,
):
    simulator = await make_simulator(broker="zebu")
    session = session_of(settings_of(simulator), "zebu")
    await session.begin()
    first = session.credentials
    assert (first.user_id, first.connect) == (ACCOUNT.client_code, LEGACY_CONNECT)
    assert simulator.logins.accepts(first.user_id, first.token.reveal(), first.connect)
    assert BROKERS["zebu"].user_id(session) == ACCOUNT.client_code

    await BROKERS["zebu"].check(simulator.url, first)  # the feed takes its `t:"c"` connect

    await simulator.expire_sessions()
    with pytest.raises(SessionExpiredError):
        await BROKERS["zebu"].check(simulator.url, first)
    renewed = await asyncio.wait_for(session.renewed(first), WAIT)

    assert renewed is not first and renewed.connect == LEGACY_CONNECT
    await BROKERS["zebu"].check(simulator.url, renewed)
    await session.close()


@pytest.mark.parametrize(
    ("wrong", "named"),
    [
        ({"ZEBU_PASSWORD": "not-the-password"}, "ZEBU_PASSWORD"),
        ({"ZEBU_TOTP_SECRET": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}, "ZEBU_TOTP_SECRET"),
        ({"ZEBU_TOTP_SECRET": "not base32!"}, "ZEBU_TOTP_SECRET"),
        ({"ZEBU_VENDOR_CODE": "OTHER_U"}, "ZEBU_VENDOR_CODE"),
        ({"ZEBU_API_SECRET": "not-the-secret"}, "ZEBU_API_SECRET"),
        ({"ZEBU_USER_ID": "SOMEONE"}, "ZEBU_USER_ID"),
    ],
)
async def test_a_quickauth_refused_names_the_setting_and_is_not_tried_again(
    make_simulator, wrong, named
):
    simulator = await make_simulator(broker="zebu")
    session = session_of(settings_of(simulator, ZEBU_ACCESS_TOKEN="", **wrong), "zebu")
    problems: asyncio.Queue[str] = asyncio.Queue()
    session.problem_listeners.append(problems.put_nowait)

    with pytest.raises(CredentialError, match=f"check {named} in the settings") as refused:
        await session.begin()
    session.keep_trying(refused.value)
    problem = await asyncio.wait_for(problems.get(), WAIT)

    assert named in problem and not session.can_renew  # nothing logs in again by itself
    for text in (str(refused.value), problem):
        shown_no_secret(text)
        assert "not-the-" not in text
    await session.close()


async def test_a_pasted_token_is_the_session_until_it_ends_then_says_to_log_in(make_simulator):
    simulator = await make_simulator(broker="shoonya")
    session = session_of(settings_of(simulator), "shoonya")
    problems: asyncio.Queue[str] = asyncio.Queue()
    session.problem_listeners.append(problems.put_nowait)
    await session.begin()
    pasted = session.credentials
    assert (pasted.token.reveal(), pasted.connect) == (ACCOUNT.access_token, OAUTH_CONNECT)
    assert not session.can_renew

    renewal = asyncio.ensure_future(session.renewed(pasted))
    problem = await asyncio.wait_for(problems.get(), WAIT)

    assert problem == "Shoonya (Finvasia) ended the session; log in again"
    assert not renewal.done()
    renewal.cancel()
    await session.close()


async def test_a_session_without_a_token_or_login_names_what_is_missing(make_simulator):
    simulator = await make_simulator(broker="flattrade")
    session = session_of(settings_of(simulator, FLATTRADE_ACCESS_TOKEN=""), "flattrade")
    with pytest.raises(CredentialError, match="FLATTRADE_ACCESS_TOKEN"):
        await session.begin()
    nobody = session_of(settings_of(simulator, FLATTRADE_USER_ID=""), "flattrade")
    with pytest.raises(CredentialError, match="FLATTRADE_USER_ID"):
        await nobody.begin()


async def test_a_vendor_out_of_reach_is_a_failure_tried_again_not_a_refusal(unused_tcp_port):
    values = {
        s.name: Secret(s.default) if s.kind == "secret" else s.default
        for s in BROKERS["zebu"].settings
    } | {
        "ZEBU_USER_ID": ACCOUNT.client_code,
        "ZEBU_PASSWORD": Secret(ACCOUNT.password),
        "ZEBU_TOTP_SECRET": Secret(ACCOUNT.totp_secret),
        "ZEBU_VENDOR_CODE": ACCOUNT.vendor_code,
        "ZEBU_API_SECRET": Secret(ACCOUNT.api_secret),
        "ZEBU_QUICKAUTH_URL": f"http://127.0.0.1:{unused_tcp_port}/NorenWClientTP",
    }
    session = session_of(values, "zebu")
    with pytest.raises(LoginError, match="cannot reach Zebu") as failed:
        await session.begin()
    assert not isinstance(failed.value, CredentialError) and session.can_renew
    shown_no_secret(str(failed.value))
