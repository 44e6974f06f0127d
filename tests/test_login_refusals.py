"""Logins the broker refuses for their settings (a wrong PIN, TOTP secret, API key) are tried
once and say which setting to fix; logins that fail for the network or the broker's server are
tried again.

Each Angel One session logs in over real sockets to the simulator's REST login, to a port
nothing listens on, or to a server that answers errors. Its waits are a hundredth of a second,
so a session that retried would log in many times while a test waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import ssl
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from backend.brokers.angel.adapter import SmartStreamCredentials
from backend.brokers.angel.login import LOGIN_PATH, AngelSession
from backend.brokers.session import LoginError
from backend.security.secret import Secret
from backend.simulator import SimulatorCredentials

ACCOUNT = SimulatorCredentials()
WRONG_PIN = "97531"
WRONG_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
WRONG_API_KEY = "not-the-api-key"
PIN_SETTINGS = "check ANGEL_CLIENT_CODE and ANGEL_PIN in the settings"
SECRETS = (WRONG_PIN, ACCOUNT.pin, WRONG_TOTP_SECRET, ACCOUNT.totp_secret, ACCOUNT.api_key)
WAIT = 10.0
#: Long enough for a session that retried to log in several times more.
QUIET = 0.3


def angel_session(root: str, pasted: SmartStreamCredentials | None = None, **account: str):
    """A session of the simulator's account at ``root``, ``account`` replacing its values."""
    values = {
        "client_code": ACCOUNT.client_code,
        "api_key": ACCOUNT.api_key,
        "pin": ACCOUNT.pin,
        "totp_secret": ACCOUNT.totp_secret,
        **account,
    }
    return AngelSession(
        root,
        values["client_code"],
        Secret(values["api_key"]),
        pin=Secret(values["pin"]),
        totp_secret=Secret(values["totp_secret"]),
        pasted=pasted,
        first_delay=0.01,
        max_delay=0.02,
    )


@contextlib.asynccontextmanager
async def started(session: AngelSession) -> AsyncIterator[asyncio.Queue[str]]:
    """``session`` begun as the backend begins it (a failed first login kept trying) and the
    problems it reports; closed afterwards."""
    problems: asyncio.Queue[str] = asyncio.Queue()
    session.problem_listeners.append(problems.put_nowait)
    try:
        await session.begin()
    except LoginError as exc:
        session.keep_trying(exc)
    try:
        yield problems
    finally:
        await session.close()


async def problem_with(problems: asyncio.Queue[str], text: str) -> str:
    """The first problem reported that contains ``text``."""
    async with asyncio.timeout(WAIT):
        while text not in (problem := str(await problems.get())):
            pass
    return problem


async def no_new_session(session: AngelSession, refused: object) -> None:
    """A connection refused with ``refused`` waits for a new session, and gets none."""
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(session.renewed(refused), QUIET)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    ("account", "expected"),
    [
        ({"pin": WRONG_PIN}, f"(AB1007) — {PIN_SETTINGS}"),
        ({"client_code": "OTHER"}, f"(AB1007) — {PIN_SETTINGS}"),
        ({"totp_secret": WRONG_TOTP_SECRET}, "Invalid totp (AB1050) — check ANGEL_TOTP_SECRET"),
        ({"api_key": WRONG_API_KEY}, "Invalid API Key (AG8004) — check ANGEL_API_KEY in"),
    ],
    ids=["wrong-pin", "wrong-client-code", "wrong-totp-secret", "wrong-api-key"],
)
async def test_a_login_refused_for_its_settings_is_tried_once(
    make_simulator, caplog, account, expected
):
    simulator = await make_simulator()
    session = angel_session(simulator.rest_url, **account)
    with caplog.at_level(logging.INFO, logger="feedpool"):
        async with started(session) as problems:
            problem = await problem_with(problems, expected)
            assert problem.startswith("Angel One refused to log in: "), problem
            assert not session.can_renew
            await no_new_session(session, None)
    assert simulator.logins.login_requests == 1
    told = [r for r in caplog.records if expected in r.getMessage()]
    assert len(told) == 1 and told[0].levelno == logging.ERROR, caplog.text
    for secret in SECRETS:
        assert secret not in caplog.text + problem


async def test_a_refused_pin_leaves_the_pasted_tokens_and_no_more_logins(make_simulator, caplog):
    simulator = await make_simulator()
    pasted = SmartStreamCredentials(
        ACCOUNT.client_code,
        Secret(ACCOUNT.api_key),
        Secret(ACCOUNT.feed_token),
        Secret(ACCOUNT.auth_token),
    )
    session = angel_session(simulator.rest_url, pasted, pin=WRONG_PIN)
    with caplog.at_level(logging.INFO, logger="feedpool"):
        async with started(session) as problems:
            assert session.credentials is pasted and session.problem == ""
            # A connection the broker refuses the pasted tokens gets no login, but the reason.
            refused = asyncio.ensure_future(no_new_session(session, pasted))
            problem = await problem_with(problems, PIN_SETTINGS)
            await refused
    assert simulator.logins.login_requests == 1
    assert len([r for r in caplog.records if PIN_SETTINGS in r.getMessage()]) == 1, caplog.text
    for secret in SECRETS:
        assert secret not in caplog.text + problem


@contextlib.asynccontextmanager
async def failing_login(failure: str) -> AsyncIterator[str]:
    """The root of a login that fails with ``failure``: ``refused`` (nothing listens there),
    ``http-500`` (a server error page) or ``AB1004`` (SmartAPI's "Something Went Wrong")."""
    if failure == "refused":
        yield f"http://127.0.0.1:{closed_port()}"
        return

    async def log_in(request: web.Request) -> web.Response:
        if failure == "http-500":
            return web.Response(status=500, text="Internal Server Error")
        return web.json_response(
            {
                "status": False,
                "message": "Something Went Wrong, Please Try After Sometime",
                "errorcode": "AB1004",
                "data": None,
            }
        )

    app = web.Application()
    app.router.add_post(LOGIN_PATH, log_in)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("failure", ["refused", "http-500", "AB1004"])
async def test_a_login_that_fails_for_the_network_or_the_server_is_tried_again(
    make_simulator, failure
):
    simulator = await make_simulator()
    async with failing_login(failure) as root:
        session = angel_session(root, pin=WRONG_PIN)
        async with started(session) as problems:
            for _ in range(3):  # the first login, then two more
                assert "check" not in str(await asyncio.wait_for(problems.get(), WAIT))
            assert session.can_renew
            # The broker answers again, and refuses the PIN: no login follows that one.
            session.root = simulator.rest_url
            await problem_with(problems, PIN_SETTINGS)
            await no_new_session(session, None)
    assert simulator.logins.login_requests == 1


async def test_renewed_sessions_leave_no_tls_context_to_the_garbage_collector(make_simulator):
    """Each login's HTTP client ends in reference cycles, which the backend's collector breaks
    only seldom (``backend/runtime/collector.py``): a TLS context of its own (0.8 MB of CA
    certificates outside Python's heap) went with each, and the backend grew by it at every
    renewal."""
    simulator = await make_simulator()
    session = angel_session(simulator.rest_url)
    gc.collect()
    gc.disable()
    try:
        await session.begin()
        for _ in range(3):
            await session.renewed(session.credentials)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = [o for o in gc.garbage if isinstance(o, ssl.SSLContext)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
        await session.close()
    assert simulator.logins.login_requests >= 1
    assert left == []
