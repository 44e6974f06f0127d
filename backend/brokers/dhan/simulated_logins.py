"""Dhan's REST logins as the bundled simulator plays them: the API key's consent flow and
``RenewToken``.

- ``POST /app/generate-consent?client_id=..`` with the ``app_id`` and ``app_secret`` headers
  (the simulator's API key and secret) answers ``{"consentAppId", "consentAppStatus":
  "GENERATED", "status": "success"}``.
- ``GET /login/consentApp-login?consentAppId=..`` is the page where the trader would log in:
  the simulator logs its account in at once and redirects (302) to the API key's redirect URL
  with a one-time ``tokenId``.
- ``GET /app/consumeApp-consent?tokenId=..`` with the same headers answers the new session:
  ``dhanClientId``, ``dhanClientName``, ``dhanClientUcc``, ``givenPowerOfAttorney``,
  ``accessToken`` and ``expiryTime`` (India's time, ISO).
- ``GET /v2/RenewToken`` with the ``access-token`` and ``dhanClientId`` headers expires the token
  it is given and answers a new one (``dhanClientId``, ``accessToken``, ``expiryTime``).

Refusals (a wrong API key or secret, client ID or token; a consent or token ID not issued) are
Dhan's REST errors, ``{"errorType", "errorCode", "errorMessage"}``: HTTP 401 with ``DH-901`` for
credentials, HTTP 400 with ``DH-905`` for a request it cannot serve.

Access tokens are JWT-shaped, with the issuing time and the expiry 24 hours on in the payload,
as Dhan's are, so that a session can tell when to renew one. :class:`DhanLogins` keeps which
tokens are good, which were good once (the feed closes with 807 for those, 809 for others), and
whether the account subscribes to the Data APIs (806 when not).
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
import secrets
import time
import uuid

from aiohttp import web

from backend.brokers.dhan import consent, protocol
from backend.brokers.dhan.login import RENEW_PATH
from backend.simulator.credentials import SimulatorCredentials, same_token
from backend.simulator.logins import Logins, new_token

log = logging.getLogger("feedpool.simulator")

TOKEN_SECONDS = 24 * 3600
API_PREFIX = "/v2"
INDIA = datetime.timezone(datetime.timedelta(seconds=protocol.IST_OFFSET_SECONDS))
BAD_APP = "Invalid app_id or app_secret for this client"
BAD_TOKEN = "Client ID or user generated access token is invalid or expired."


def access_token(client_id: str, now: float | None = None) -> tuple[str, float]:
    """A new JWT-shaped access token for ``client_id``, and when it expires (epoch seconds)."""
    issued = int(time.time() if now is None else now)
    expiry = issued + TOKEN_SECONDS

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    header = part({"typ": "JWT", "alg": "HS512"})
    payload = part(
        {
            "iss": "dhan",
            "partnerId": "",
            "exp": expiry,
            "iat": issued,
            "tokenConsumerType": "SELF",
            "dhanClientId": client_id,
        }
    )
    return f"{header}.{payload}.{secrets.token_urlsafe(64)}", expiry


def india_time(epoch: float) -> str:
    """An epoch time as Dhan's ``expiryTime``: India's wall clock, ISO, to the second."""
    return datetime.datetime.fromtimestamp(epoch, INDIA).replace(tzinfo=None).isoformat()


class DhanLogins(Logins):
    """The account's Dhan sessions: consents under way, token IDs not yet consumed, the newest
    access token, and the tokens that were good once."""

    def __init__(self, credentials: SimulatorCredentials) -> None:
        super().__init__(credentials)
        #: Whether the account subscribes to the Data APIs; without, the feed closes with 806.
        self.data_apis = True
        self._consents: set[str] = set()
        self._token_ids: set[str] = set()
        self._access_token: str | None = None
        self._expiry = 0.0
        self._spent: set[str] = set()

    def consent(self) -> str:
        """A new consent, for one login."""
        consent_id = str(uuid.uuid4())
        self._consents.add(consent_id)
        return consent_id

    def log_in(self, consent_id: str) -> str | None:
        """A token ID for the login of consent ``consent_id``; None if it is not one."""
        if consent_id not in self._consents:
            return None
        self._consents.discard(consent_id)
        token_id = new_token()
        self._token_ids.add(token_id)
        return token_id

    def consume(self, token_id: str) -> str | None:
        """The access token of a new session for ``token_id``; None if it is not good."""
        for issued in self._token_ids:
            if same_token(token_id, issued):
                self._token_ids.discard(issued)
                return self._issue()
        return None

    def renew(self, token: str) -> str | None:
        """A new access token for the good ``token``, which expires; None if it is not good."""
        if not self.good_access_token(token):
            return None
        if self._access_token is None or not same_token(token, self._access_token):
            super().expire()  # the fixed token
            self._spent.add(token)
        return self._issue()

    def _issue(self) -> str:
        if self._access_token is not None:
            self._spent.add(self._access_token)
        self._access_token, self._expiry = access_token(self.credentials.client_code)
        return self._access_token

    @property
    def expiry(self) -> float:
        """When the newest access token expires, in epoch seconds."""
        return self._expiry

    def good_access_token(self, sent: str) -> bool:
        return self.good(sent, self._access_token, self.credentials.access_token)

    def verdict(self, client_id: str, token: str) -> int | None:
        """Why the feed refuses ``client_id`` with ``token`` (a disconnect reason), or None."""
        if not same_token(client_id, self.credentials.client_code):
            return protocol.AUTHENTICATION_FAILED
        if self.good_access_token(token):
            return protocol.DATA_APIS_NOT_SUBSCRIBED if not self.data_apis else None
        spent = same_token(token, self.credentials.access_token) or any(
            same_token(token, old) for old in self._spent
        )
        return protocol.TOKEN_EXPIRED if spent else protocol.TOKEN_INVALID

    def expire(self) -> None:
        super().expire()
        if self._access_token is not None:
            self._spent.add(self._access_token)
        self._access_token = None
        self._consents.clear()
        self._token_ids.clear()


def error(status: int, code: str, message: str) -> web.Response:
    """A REST call Dhan refuses, as it answers one."""
    kind = "Invalid_Authentication" if status == 401 else "Input_Exception"
    body = {"errorType": kind, "errorCode": code, "errorMessage": message}
    return web.json_response(body, status=status)


def routes(logins: DhanLogins) -> list[web.RouteDef]:
    """Dhan's consent flow and ``RenewToken``, issuing and checking the sessions of ``logins``."""
    credentials = logins.credentials

    def good_app(request: web.Request) -> bool:
        keys = request.headers.getall("app_id", [])
        secrets_sent = request.headers.getall("app_secret", [])
        return len(keys) == len(secrets_sent) == 1 and same_token(
            keys[0], credentials.api_key
        ) & same_token(secrets_sent[0], credentials.api_secret)

    async def generate_consent(request: web.Request) -> web.Response:
        client_ids = request.query.getall("client_id", [])
        if not good_app(request) or len(client_ids) != 1:
            log.info("Dhan consent: refused, wrong API key or secret")
            return error(401, "DH-901", BAD_APP)
        if not same_token(client_ids[0], credentials.client_code):
            log.info("Dhan consent: refused, unknown client ID")
            return error(401, "DH-901", BAD_APP)
        body = {
            "consentAppId": logins.consent(),
            "consentAppStatus": "GENERATED",
            "status": "success",
        }
        return web.json_response(body)

    async def login_page(request: web.Request) -> web.Response:
        token_id = logins.log_in(request.query.get("consentAppId", ""))
        if token_id is None:
            return web.Response(status=400, text="Invalid consentAppId\n")
        log.info("Dhan login for %s: redirected with a token ID", credentials.client_code)
        separator = "&" if "?" in credentials.redirect_url else "?"
        raise web.HTTPFound(f"{credentials.redirect_url}{separator}tokenId={token_id}")

    async def consume_consent(request: web.Request) -> web.Response:
        if not good_app(request):
            log.info("Dhan consent consumed: refused, wrong API key or secret")
            return error(401, "DH-901", BAD_APP)
        token = logins.consume(request.query.get("tokenId", ""))
        if token is None:
            log.info("Dhan consent consumed: refused, the token ID is not good")
            return error(400, "DH-905", "Invalid tokenId")
        log.info("Dhan login for %s: new session", credentials.client_code)
        body = {
            "dhanClientId": credentials.client_code,
            "dhanClientName": "FEEDPOOL SIMULATOR",
            "dhanClientUcc": "FPSIM0001A",
            "givenPowerOfAttorney": False,
            "accessToken": token,
            "expiryTime": india_time(logins.expiry),
        }
        return web.json_response(body)

    async def renew(request: web.Request) -> web.Response:
        client_ids = request.headers.getall("dhanClientId", [])
        tokens = request.headers.getall("access-token", [])
        good_client = len(client_ids) == 1 and same_token(client_ids[0], credentials.client_code)
        renewed = logins.renew(tokens[0]) if good_client and len(tokens) == 1 else None
        if renewed is None:
            log.info("Dhan token renewal: refused, the client ID or token is not good")
            return error(401, "DH-901", BAD_TOKEN)
        log.info("Dhan token renewal for %s", credentials.client_code)
        body = {
            "dhanClientId": credentials.client_code,
            "accessToken": renewed,
            "expiryTime": india_time(logins.expiry),
        }
        return web.json_response(body)

    return [
        web.post(consent.CONSENT_PATH, generate_consent),
        web.get(consent.LOGIN_PATH, login_page),
        web.get(consent.CONSUME_PATH, consume_consent),
        web.get(API_PREFIX + RENEW_PATH, renew),
    ]
