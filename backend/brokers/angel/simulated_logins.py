"""Angel One's SmartAPI logins as the bundled simulator plays them: the sessions they issue
(:class:`AngelLogins`) and the REST routes of ``SmartConnect``.

Each login issues a JWT, a refresh token and a feed token. The refresh token renews the JWT and
the feed token until the sessions expire; a new login replaces the session, and the older one's
tokens are no longer good.

- ``POST /rest/auth/angelbroking/user/v1/loginByPassword`` takes ``{"clientcode", "password"
  (the PIN), "totp"}`` with the API key in ``X-PrivateKey``. The TOTP code is checked against
  the account's TOTP secret as an authenticator's code is: the current 30-second step, or
  one step either side. It answers a new session's ``jwtToken``, ``refreshToken`` and
  ``feedToken`` (the JWT without a ``Bearer`` prefix, as ``SmartConnect`` adds one).
- ``POST /rest/auth/angelbroking/jwt/v1/generateTokens`` takes ``{"refreshToken"}`` and
  answers a new JWT and feed token for that session.
- ``GET /rest/secure/angelbroking/user/v1/getProfile`` needs ``Authorization: Bearer <jwt>``
  and answers the account's profile. Its query (``SmartConnect`` sends its parameters there as
  a JSON string) is not read.

As the broker does, a refused login or renewal is answered with HTTP 200 and
``{"status": false, "message", "errorcode", "data": null}``: ``AB1007`` for a wrong client
code or PIN, ``AB1050`` for a wrong TOTP code, ``AB8050`` for a refresh token that is not
good. The API gateway's refusals have another envelope, ``{"success": false, "message",
"errorCode", "data": ""}``: ``AG8004`` (HTTP 200) for a wrong API key, and on the secure route
``AG8001`` "Invalid Token" or ``AG8003`` "Token missing" with HTTP 401. A body the simulator
cannot read gets HTTP 400 with ``AB1004`` and a message naming what was wrong.

Every ``loginByPassword`` request is counted (:attr:`AngelLogins.login_requests`), refused or
not.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import pyotp
from aiohttp import web

from backend.simulator.credentials import SimulatorCredentials, same_token
from backend.simulator.logins import Logins, new_token

log = logging.getLogger("feedpool.simulator")

LOGIN_PATH = "/rest/auth/angelbroking/user/v1/loginByPassword"
RENEW_PATH = "/rest/auth/angelbroking/jwt/v1/generateTokens"
PROFILE_PATH = "/rest/secure/angelbroking/user/v1/getProfile"

BAD_LOGIN = ("AB1007", "Login Id or password is invalid")
BAD_TOTP = ("AB1050", "Invalid totp")
BAD_REFRESH_TOKEN = ("AB8050", "Invalid Refresh Token")
BAD_REQUEST = "AB1004"
BAD_API_KEY = ("AG8004", "Invalid API Key")
BAD_JWT = ("AG8001", "Invalid Token")
NO_JWT = ("AG8003", "Token missing")


@dataclass(frozen=True, slots=True)
class SessionTokens:
    """The tokens of one login, or of its renewal."""

    jwt: str = field(default_factory=new_token, repr=False)
    refresh_token: str = field(default_factory=new_token, repr=False)
    feed_token: str = field(default_factory=new_token, repr=False)


class AngelLogins(Logins):
    """The account's Angel One sessions: the newest login's tokens, and how many were asked for."""

    def __init__(self, credentials: SimulatorCredentials) -> None:
        super().__init__(credentials)
        #: How many logins were asked for, refused ones included.
        self.login_requests = 0
        self._session: SessionTokens | None = None

    def log_in(self) -> SessionTokens:
        """A new session, replacing the one before."""
        self._session = SessionTokens()
        return self._session

    def renew(self, refresh_token: str) -> SessionTokens | None:
        """A new JWT and feed token for the session of ``refresh_token``; None if not good."""
        session = self._session
        if session is None or not same_token(refresh_token, session.refresh_token):
            return None
        self._session = SessionTokens(refresh_token=session.refresh_token)
        return self._session

    def good_jwt(self, sent: str) -> bool:
        """Whether ``sent`` is a good JWT, with or without its ``Bearer`` prefix."""
        issued = self._session.jwt if self._session else None
        return self.good(sent, issued, self.credentials.auth_token, bearer=True)

    def good_feed_token(self, sent: str) -> bool:
        issued = self._session.feed_token if self._session else None
        return self.good(sent, issued, self.credentials.feed_token)

    def expire(self) -> None:
        super().expire()
        self._session = None


def refusal(code_and_message: tuple[str, str]) -> web.Response:
    """A refused login or renewal, as the broker answers it."""
    code, message = code_and_message
    return web.json_response({"status": False, "message": message, "errorcode": code, "data": None})


def gateway_refusal(code_and_message: tuple[str, str], status: int = 200) -> web.Response:
    """A request the API gateway refuses, in the gateway's envelope."""
    code, message = code_and_message
    body = {"success": False, "message": message, "errorCode": code, "data": ""}
    return web.json_response(body, status=status)


def success(data: dict[str, Any]) -> web.Response:
    return web.json_response({"status": True, "message": "SUCCESS", "errorcode": "", "data": data})


def session_data(session: SessionTokens) -> dict[str, Any]:
    return {
        "jwtToken": session.jwt,
        "refreshToken": session.refresh_token,
        "feedToken": session.feed_token,
        "state": None,
    }


class BadRequest(ValueError):
    """A request body the simulator cannot read."""


async def _fields(request: web.Request, *names: str) -> dict[str, str]:
    """The named string fields of the request's JSON object body."""
    try:
        body = json.loads(await request.read())
    except (ValueError, RecursionError):
        raise BadRequest("the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body is not a JSON object")
    missing = [name for name in names if not isinstance(body.get(name), str)]
    if missing:
        raise BadRequest(f"the body has no string {', '.join(missing)}")
    return {name: body[name] for name in names}


def routes(logins: AngelLogins) -> list[web.RouteDef]:
    """The Angel One REST routes, issuing and checking the sessions of ``logins``."""
    credentials = logins.credentials

    def good_api_key(request: web.Request) -> bool:
        values = request.headers.getall("X-PrivateKey", [])
        return len(values) == 1 and same_token(values[0], credentials.api_key)

    async def read(request: web.Request, *names: str) -> dict[str, str] | web.Response:
        """The body's fields, or the answer to a request that cannot be served."""
        if not good_api_key(request):
            log.info("Angel One REST %s: refused, wrong API key", request.path)
            return gateway_refusal(BAD_API_KEY)
        try:
            return await _fields(request, *names)
        except BadRequest as exc:
            log.info("Angel One REST %s: refused, %s", request.path, exc)
            body = {"status": False, "message": f"Invalid request: {exc}", "errorcode": BAD_REQUEST}
            return web.json_response({**body, "data": None}, status=400)

    async def log_in(request: web.Request) -> web.Response:
        logins.login_requests += 1
        fields = await read(request, "clientcode", "password", "totp")
        if isinstance(fields, web.Response):
            return fields
        client_code = credentials.client_code
        if not (
            same_token(fields["clientcode"], client_code)
            & same_token(fields["password"], credentials.pin)
        ):
            log.info("Angel One login: refused, wrong client code or PIN")
            return refusal(BAD_LOGIN)
        if not pyotp.TOTP(credentials.totp_secret).verify(fields["totp"], valid_window=1):
            log.info("Angel One login for %s: refused, wrong TOTP code", client_code)
            return refusal(BAD_TOTP)
        log.info("Angel One login for %s: new session", client_code)
        return success(session_data(logins.log_in()))

    async def renew(request: web.Request) -> web.Response:
        fields = await read(request, "refreshToken")
        if isinstance(fields, web.Response):
            return fields
        session = logins.renew(fields["refreshToken"])
        if session is None:
            log.info("Angel One token renewal: refused, the refresh token is not good")
            return refusal(BAD_REFRESH_TOKEN)
        log.info("Angel One token renewal for %s", credentials.client_code)
        return success(session_data(session))

    async def profile(request: web.Request) -> web.Response:
        if not good_api_key(request):
            return gateway_refusal(BAD_API_KEY)
        values = request.headers.getall("Authorization", [])
        if not values:
            return gateway_refusal(NO_JWT, 401)
        if len(values) > 1 or not logins.good_jwt(values[0]):
            log.info("Angel One profile: refused, the JWT is not good")
            return gateway_refusal(BAD_JWT, 401)
        return success(
            {
                "clientcode": credentials.client_code,
                "name": "FeedPool Simulator",
                "email": "",
                "mobileno": "",
                "exchanges": ["nse_cm", "nse_fo", "bse_cm", "bse_fo", "mcx_fo", "cde_fo"],
                "products": ["MARGIN", "MIS", "NRML", "CNC", "CO", "BO"],
                "lastlogintime": "",
                "broker": "",
            }
        )

    return [
        web.post(LOGIN_PATH, log_in),
        web.post(RENEW_PATH, renew),
        web.get(PROFILE_PATH, profile),
    ]
