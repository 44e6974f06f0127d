"""Dhan's browser login: the API key's consent flow, which gives the day's access token.

1. :func:`login_page` asks Dhan for a consent (``POST {DHAN_AUTH_URL}/app/generate-consent
   ?client_id=..``, the API key and secret in the ``app_id`` and ``app_secret`` headers) and
   answers the page where the trader logs in: ``{DHAN_AUTH_URL}/login/consentApp-login
   ?consentAppId=..``.
2. After the login Dhan redirects the browser to the API key's redirect URL with a ``tokenId``.
3. :func:`finish` reads it from that URL and trades it for the access token (``GET
   {DHAN_AUTH_URL}/app/consumeApp-consent?tokenId=..``, the same headers): the settings to save,
   ``DHAN_ACCESS_TOKEN`` and ``DHAN_CLIENT_ID``, and who logged in.

A refusal of the API key or secret (HTTP 401 or 403) is a
:class:`~backend.brokers.session.CredentialError` naming the settings to check; other refusals
(a consent or token ID Dhan does not know) give Dhan's reason. No key, secret or token reaches a
log line or an error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from backend.brokers.broker import BrowserLogin, LoginResult
from backend.brokers.dhan.adapter import LABEL
from backend.brokers.dhan.login import Refused, call, reason
from backend.brokers.session import CredentialError, LoginError

log = logging.getLogger("feedpool.dhan")

AUTH_ROOT = "https://auth.dhan.co"
CONSENT_PATH = "/app/generate-consent"
LOGIN_PATH = "/login/consentApp-login"
CONSUME_PATH = "/app/consumeApp-consent"
APP_SETTINGS = "check DHAN_CLIENT_ID, DHAN_API_KEY and DHAN_API_SECRET in the settings"
UNAUTHORISED = (401, 403)


def _headers(values: Mapping[str, Any]) -> dict[str, str]:
    return {
        "app_id": values["DHAN_API_KEY"].reveal(),
        "app_secret": values["DHAN_API_SECRET"].reveal(),
    }


def _root(values: Mapping[str, Any]) -> str:
    return str(values["DHAN_AUTH_URL"]).rstrip("/")


async def _call(method: str, url: str, values: Mapping[str, Any], what: str) -> dict[str, Any]:
    """A consent call with the API key and secret; a refusal of them (HTTP 401 or 403) is a
    :class:`CredentialError` naming the settings to check."""
    try:
        return await call(method, url, _headers(values), what)
    except Refused as exc:
        if exc.status in UNAUTHORISED:
            raise CredentialError(f"{exc} — {APP_SETTINGS}") from None
        raise


async def login_page(values: Mapping[str, Any]) -> str:
    """The page where the trader logs in, for a consent Dhan made for the API key."""
    query = urlencode({"client_id": values["DHAN_CLIENT_ID"]})
    answer = await _call("POST", f"{_root(values)}{CONSENT_PATH}?{query}", values, "make a consent")
    consent = answer.get("consentAppId")
    if answer.get("status") != "success" or not isinstance(consent, str) or not consent:
        raise CredentialError(f"{LABEL} made no consent ({reason(answer, 200)}) — {APP_SETTINGS}")
    return f"{_root(values)}{LOGIN_PATH}?{urlencode({'consentAppId': consent})}"


def token_id_from(url: str) -> str:
    """The ``tokenId`` of Dhan's redirect URL; :class:`LoginError` if it has none."""
    token_id = parse_qs(urlsplit(url.strip()).query).get("tokenId", [""])[0]
    if not token_id:
        raise LoginError(
            "the redirect URL carries no tokenId: copy the whole address Dhan redirected the "
            "browser to"
        )
    return token_id


async def finish(values: Mapping[str, Any], redirect: str) -> LoginResult:
    """The access token for the ``tokenId`` of ``redirect``, as the settings to save."""
    query = urlencode({"tokenId": token_id_from(redirect)})
    answer = await _call("GET", f"{_root(values)}{CONSUME_PATH}?{query}", values, "log in")
    token, client_id = answer.get("accessToken"), answer.get("dhanClientId")
    if not isinstance(token, str) or not token or not isinstance(client_id, str | int):
        raise LoginError(f"{LABEL} answered the login with no access token ({reason(answer, 200)})")
    log.info("%s: logged in as %s", LABEL, client_id)
    return LoginResult(
        saved={"DHAN_ACCESS_TOKEN": token, "DHAN_CLIENT_ID": str(client_id)},
        user_id=str(client_id),
    )


BROWSER_LOGIN = BrowserLogin(
    redirect_setting="DHAN_REDIRECT_URL",
    required=("DHAN_CLIENT_ID", "DHAN_API_KEY", "DHAN_API_SECRET"),
    page=login_page,
    finish=finish,
)
