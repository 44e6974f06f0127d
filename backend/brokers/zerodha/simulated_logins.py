"""Zerodha Kite Connect's logins as the bundled simulator plays them: the sessions they issue
(:class:`KiteLogins`), the login page and the token exchange.

Each login issues a request token, good for one exchange for an access token; the newest access
token is good.

- ``GET /connect/login?api_key=K&v=3`` stands for Kite's login page with the user logged in:
  it redirects (HTTP 302) to the app's registered redirect URL with a new
  ``request_token``, ``action=login``, ``type=login`` and ``status=success``. An unknown
  ``api_key`` gets an error page, HTTP 400.
- ``POST /session/token`` takes the form ``api_key``, ``request_token`` and ``checksum`` (the
  SHA-256 hex of api_key + request_token + api_secret) and answers ``{"status": "success",
  "data": {...}}`` with the new session's ``access_token``, ``public_token``, ``user_id``,
  ``login_time`` and an empty ``refresh_token``, as Kite does for an ordinary app. A request
  token is good for one exchange.

Refusals are Kite's JSON errors, ``{"status": "error", "message", "error_type", "data":
null}``, whose ``error_type`` names the exception ``kiteconnect`` raises: a wrong API key,
checksum or request token gets HTTP 403 ``TokenException``; a missing field gets HTTP 400
``InputException``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from urllib.parse import urlencode

from aiohttp import web

from backend.simulator.credentials import SimulatorCredentials, same_token
from backend.simulator.logins import Logins, new_token

log = logging.getLogger("feedpool.simulator")

LOGIN_PATH = "/connect/login"
TOKEN_PATH = "/session/token"

BAD_API_KEY = "Invalid `api_key`."
BAD_CHECKSUM = "Invalid `checksum`."
BAD_REQUEST_TOKEN = "Token is invalid or has expired."
TOKEN_EXCEPTION = "TokenException"
INPUT_EXCEPTION = "InputException"


class KiteLogins(Logins):
    """The account's Kite sessions: the request tokens not yet exchanged, and the newest access
    token."""

    def __init__(self, credentials: SimulatorCredentials) -> None:
        super().__init__(credentials)
        self._request_tokens: set[str] = set()
        self._access_token: str | None = None

    def log_in(self) -> str:
        """A new request token, good for one :meth:`redeem`."""
        token = new_token()
        self._request_tokens.add(token)
        return token

    def redeem(self, request_token: str) -> str | None:
        """The access token of a new session for ``request_token``; None if it is not good."""
        for token in self._request_tokens:
            if same_token(request_token, token):
                self._request_tokens.discard(token)
                self._access_token = new_token()
                return self._access_token
        return None

    def good_access_token(self, sent: str) -> bool:
        return self.good(sent, self._access_token, self.credentials.access_token)

    def expire(self) -> None:
        super().expire()
        self._request_tokens.clear()
        self._access_token = None


def error(status: int, error_type: str, message: str) -> web.Response:
    body = {"status": "error", "message": message, "error_type": error_type, "data": None}
    return web.json_response(body, status=status)


def checksum(api_key: str, request_token: str, api_secret: str) -> str:
    """The checksum of a token exchange: SHA-256 hex of api_key + request_token + api_secret."""
    return hashlib.sha256((api_key + request_token + api_secret).encode()).hexdigest()


def with_query(url: str, query: dict[str, str]) -> str:
    """``url`` with ``query`` added to the query it may have."""
    return url + ("&" if "?" in url else "?") + urlencode(query)


def routes(logins: KiteLogins) -> list[web.RouteDef]:
    """The Kite Connect REST routes, issuing and checking the sessions of ``logins``."""
    credentials = logins.credentials

    async def log_in(request: web.Request) -> web.Response:
        api_keys = request.query.getall("api_key", [])
        if len(api_keys) != 1 or not same_token(api_keys[0], credentials.api_key):
            log.info("Kite login page: refused, unknown API key")
            return web.Response(
                status=400,
                text=f"<html><body><h1>Error</h1><p>{BAD_API_KEY}</p></body></html>\n",
                content_type="text/html",
            )
        query = {
            "request_token": logins.log_in(),
            "action": "login",
            "type": "login",
            "status": "success",
        }
        log.info("Kite login for %s: redirected with a request token", credentials.client_code)
        raise web.HTTPFound(with_query(credentials.redirect_url, query))

    async def exchange(request: web.Request) -> web.Response:
        form = await request.post()
        fields: dict[str, str] = {}
        for name in ("api_key", "request_token", "checksum"):
            value = form.get(name)
            if not isinstance(value, str) or not value:
                return error(400, INPUT_EXCEPTION, f"Missing `{name}`.")
            fields[name] = value
        if not same_token(fields["api_key"], credentials.api_key):
            log.info("Kite token exchange: refused, unknown API key")
            return error(403, TOKEN_EXCEPTION, BAD_API_KEY)
        expected = checksum(credentials.api_key, fields["request_token"], credentials.api_secret)
        if not same_token(fields["checksum"], expected):
            log.info("Kite token exchange: refused, wrong checksum")
            return error(403, TOKEN_EXCEPTION, BAD_CHECKSUM)
        access_token = logins.redeem(fields["request_token"])
        if access_token is None:
            log.info("Kite token exchange: refused, the request token is not good")
            return error(403, TOKEN_EXCEPTION, BAD_REQUEST_TOKEN)
        log.info("Kite token exchange for %s: new session", credentials.client_code)
        data = {
            "user_type": "individual",
            "email": "",
            "user_name": "FeedPool Simulator",
            "user_shortname": "FeedPool",
            "broker": "ZERODHA",
            "exchanges": ["NSE", "NFO", "BSE", "BFO", "CDS", "MCX"],
            "products": ["CNC", "NRML", "MIS"],
            "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
            "avatar_url": None,
            "user_id": credentials.client_code,
            "api_key": credentials.api_key,
            "access_token": access_token,
            "public_token": new_token(),
            "refresh_token": "",
            "login_time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "meta": {"demat_consent": "consent"},
        }
        return web.json_response({"status": "success", "data": data})

    return [web.get(LOGIN_PATH, log_in), web.post(TOKEN_PATH, exchange)]
