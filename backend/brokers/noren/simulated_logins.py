"""A Noren vendor's REST logins as the bundled simulator plays them, at the vendor's paths.

- ``POST {quickauth root}/QuickAuth`` (a vendor that offers it: Zebu): the raw body
  ``jData=<json>`` (no Content-Type, as the official client sends it; a ``&jKey=`` after it is
  ignored) with ``uid``, ``pwd`` (SHA-256 hex of the password), ``factor2`` (the current TOTP
  code), ``vc`` (the vendor code) and ``appkey`` (SHA-256 hex of ``uid|api secret``) answers
  ``stat: "Ok"`` and a ``susertoken``, for the legacy connect ``t:"c"``.
- OAuth (Shoonya, Zebu): ``GET {authorise page}?client_id=..`` is the page where the trader would
  log in: the simulator logs its account in at once and redirects (302) to the redirect URL with
  a one-time ``code``. ``POST {REST root}/GenAcsTok`` with ``jData={"code", "checksum", "uid"}``,
  the checksum SHA-256 hex of client ID + secret + code, answers ``access_token`` (for
  ``t:"a"``), ``refresh_token``, ``USERID``, ``actid`` and ``susertoken``.
- Flattrade: ``GET {auth page}?app_key=..`` redirects the same way with a ``code``;
  ``POST /trade/apitoken`` with the JSON body ``{"api_key", "request_code", "api_secret"}``, the
  last SHA-256 hex of API key + code + API secret, answers ``token`` (for ``t:"a"``) and
  ``client``.

A ``//`` before the route's last part is taken as ``/``: the official client joins its host and
routes with one too many when the host ends in a slash. Refusals are Noren's:
``{"request_time", "stat": "Not_Ok", "emsg"}``, HTTP 200, in Noren's words where they are known
("Invalid Input : Wrong Password", "Invalid Input :  jData is Missing.") and in their style where
not. :class:`NorenLogins` keeps the one-time codes and the newest token of each connect.
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import pyotp
from aiohttp import web

from backend.brokers.noren.login import QUICKAUTH_PATH, sha256
from backend.brokers.noren.protocol import LEGACY_CONNECT, OAUTH_CONNECT
from backend.brokers.noren.vendors import Vendor
from backend.simulator.credentials import SimulatorCredentials, same_token
from backend.simulator.logins import Logins, new_token

log = logging.getLogger("feedpool.simulator")

INDIA = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
JDATA, JKEY = "jData=", "&jKey="
NO_JDATA = "Invalid Input :  jData is Missing."
WRONG_PASSWORD = "Invalid Input : Wrong Password"
WRONG_USER = "Invalid Input : Invalid User Id"
WRONG_OTP = "Invalid Input : Invalid OTP"
WRONG_VENDOR = "Invalid Input : Invalid Vendor Code"
WRONG_APP_KEY = "Invalid Input : Invalid App Key"
WRONG_CODE = "Invalid Input : Invalid Auth Code"
WRONG_CHECKSUM = "Invalid Input : Checksum Mismatch"
WRONG_API_KEY = "Invalid api key"
WRONG_API_SECRET = "Invalid api secret"


class NorenLogins(Logins):
    """The account's sessions at one Noren vendor: one-time codes not yet traded, and the
    newest token of each connect (``c``: a susertoken, ``a``: an access token)."""

    def __init__(self, vendor: Vendor, credentials: SimulatorCredentials) -> None:
        super().__init__(credentials)
        self.vendor = vendor
        self._codes: set[str] = set()
        self._issued: dict[str, str | None] = {LEGACY_CONNECT: None, OAUTH_CONNECT: None}

    def authorise(self) -> str:
        """A one-time code for a browser login."""
        code = new_token()
        self._codes.add(code)
        return code

    def redeem(self, code: str) -> bool:
        """Whether ``code`` is a code not yet traded; it is spent either way."""
        for issued in self._codes:
            if same_token(code, issued):
                self._codes.discard(issued)
                return True
        return False

    def issue(self, connect: str) -> str:
        """A new token for ``connect``, replacing the one before."""
        self._issued[connect] = new_token()
        return self._issued[connect]

    def accepts(self, uid: str, token: str, connect: str) -> bool:
        """Whether ``token`` is a good token of the user ``uid`` for ``connect``: the newest
        issued for it or, until the sessions expire, the account's fixed one."""
        good = self.good(token, self._issued.get(connect), self.credentials.access_token)
        return same_token(uid, self.credentials.client_code) & good

    def expire(self) -> None:
        super().expire()
        self._codes.clear()
        self._issued = dict.fromkeys(self._issued)


def refusal(emsg: str) -> web.Response:
    """A REST call Noren refuses, as it answers one."""
    now = datetime.datetime.now(INDIA).strftime("%H:%M:%S %d-%m-%Y")
    return web.json_response({"request_time": now, "stat": "Not_Ok", "emsg": emsg})


async def jdata(request: web.Request) -> dict[str, Any] | None:
    """The JSON object of a raw ``jData=<json>[&jKey=..]`` body; None if there is none."""
    text = await request.text()
    if not text.startswith(JDATA):
        return None
    body = text[len(JDATA) :]
    if JKEY in body:
        body = body[: body.rindex(JKEY)]
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def route_path(url: str) -> str:
    """The path of ``url``, its last part reachable after a ``//`` too."""
    path = urlsplit(url).path.rstrip("/")
    head, _, tail = path.rpartition("/")
    return f"{head}/{{slash:/?}}{tail}"


def _redirect(credentials: SimulatorCredentials, code: str) -> web.HTTPFound:
    separator = "&" if "?" in credentials.redirect_url else "?"
    return web.HTTPFound(f"{credentials.redirect_url}{separator}code={code}")


def _text(fields: dict[str, Any], name: str) -> str:
    value = fields.get(name)
    return value if isinstance(value, str) else ""


def routes(logins: NorenLogins) -> list[web.RouteDef]:
    """The vendor's logins, issuing and checking the sessions of ``logins``."""
    vendor, credentials = logins.vendor, logins.credentials
    user = credentials.client_code

    async def quickauth(request: web.Request) -> web.Response:
        fields = await jdata(request)
        if fields is None:
            return refusal(NO_JDATA)
        totp = pyotp.TOTP(credentials.totp_secret)
        checks = (
            (same_token(_text(fields, "uid"), user), WRONG_USER),
            (same_token(_text(fields, "pwd"), sha256(credentials.password)), WRONG_PASSWORD),
            (totp.verify(_text(fields, "factor2"), valid_window=1), WRONG_OTP),
            (same_token(_text(fields, "vc"), credentials.vendor_code), WRONG_VENDOR),
            (
                same_token(_text(fields, "appkey"), sha256(f"{user}|{credentials.api_secret}")),
                WRONG_APP_KEY,
            ),
        )
        for passed, emsg in checks:
            if not passed:
                log.info("%s QuickAuth: refused (%s)", vendor.label, emsg)
                return refusal(emsg)
        log.info("%s QuickAuth for %s: new session", vendor.label, user)
        now = datetime.datetime.now(INDIA)
        return web.json_response(
            {
                "request_time": now.strftime("%H:%M:%S %d-%m-%Y"),
                "actid": user,
                "uname": "FEEDPOOL SIMULATOR",
                "stat": "Ok",
                "susertoken": logins.issue(LEGACY_CONNECT),
                "brkname": vendor.label,
                "email": "simulator@feedpool.invalid",
                "lastaccesstime": str(int(now.timestamp())),
                "exarr": ["NSE", "NFO", "BSE", "BFO", "CDS", "MCX"],
            }
        )

    async def authorise(request: web.Request) -> web.Response:
        name, expected = (
            ("app_key", credentials.api_key)
            if vendor.login == "flattrade"
            else ("client_id", credentials.oauth_client_id)
        )
        sent = request.query.getall(name, [])
        if len(sent) != 1 or not same_token(sent[0], expected):
            return web.Response(status=400, text=f"Invalid {name}\n")
        log.info("%s login for %s: redirected with a code", vendor.label, user)
        raise _redirect(credentials, logins.authorise())

    async def gen_acs_tok(request: web.Request) -> web.Response:
        fields = await jdata(request)
        if fields is None:
            return refusal(NO_JDATA)
        code = _text(fields, "code")
        if not logins.redeem(code):
            return refusal(WRONG_CODE)
        checksum = sha256(credentials.oauth_client_id + credentials.api_secret + code)
        if not same_token(_text(fields, "checksum"), checksum):
            log.info("%s GenAcsTok: refused, wrong checksum", vendor.label)
            return refusal(WRONG_CHECKSUM)
        log.info("%s GenAcsTok for %s: new session", vendor.label, user)
        return web.json_response(
            {
                "stat": "Ok",
                "access_token": logins.issue(OAUTH_CONNECT),
                "refresh_token": new_token(),
                "expires_in": "86400",
                "USERID": user,
                "actid": user,
                "susertoken": logins.issue(LEGACY_CONNECT),
            }
        )

    async def apitoken(request: web.Request) -> web.Response:
        try:
            fields = await request.json()
        except ValueError:
            fields = None
        if not isinstance(fields, dict):
            return refusal("Invalid request")
        key, code = _text(fields, "api_key"), _text(fields, "request_code")
        if not same_token(key, credentials.api_key):
            return refusal(WRONG_API_KEY)
        if not logins.redeem(code):
            return refusal("Invalid request code")
        expected = sha256(key + code + credentials.api_secret)
        if not same_token(_text(fields, "api_secret"), expected):
            log.info("%s apitoken: refused, wrong checksum", vendor.label)
            return refusal(WRONG_API_SECRET)
        log.info("%s apitoken for %s: new session", vendor.label, user)
        token = logins.issue(OAUTH_CONNECT)
        return web.json_response({"token": token, "client": user, "stat": "Ok", "emsg": ""})

    found = [web.get(urlsplit(vendor.authorise_url).path or "/", authorise)]
    if vendor.login == "flattrade":
        found.append(web.post(route_path(vendor.token_url), apitoken))
    else:
        found.append(web.post(route_path(vendor.token_url), gen_acs_tok))
    if vendor.quickauth_root:
        found.append(web.post(route_path(vendor.quickauth_root + QUICKAUTH_PATH), quickauth))
    return found
