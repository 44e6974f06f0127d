"""Zerodha Kite's login: the browser flow that gives the day's access token.

Kite has no unattended login; :data:`BROWSER_LOGIN` is the one the desktop offers. :func:`page`
is Kite's login page for the Kite app's API key. After the trader signs in there, Kite sends the
browser to the app's registered redirect URL with a one-time ``request_token``
(:func:`request_token_from` reads it from the address the browser reached). :func:`finish` trades
it for the day's access token through ``POST /session/token`` (:func:`exchange`), signed with the
checksum SHA-256(api_key + request_token + api_secret), and gives it as ``KITE_ACCESS_TOKEN``.

The access token lasts until the next morning; when Kite refuses it the trader logs in again.
An exchange Kite refuses for the Kite app's API key or secret is a
:class:`~backend.brokers.session.CredentialError` naming the setting to check. No key, secret or
token reaches a log line or an error.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx

from backend.brokers.broker import BrowserLogin, LoginResult
from backend.brokers.session import CredentialError, LoginError, login_tls
from backend.security.secret import Secret

log = logging.getLogger("feedpool.zerodha")

LOGIN_PAGE = "https://kite.zerodha.com/connect/login"
API_ROOT = "https://api.kite.trade"
SESSION_PATH = "/session/token"
TIMEOUT = 10.0
LABEL = "Zerodha Kite"
#: The setting to check when Kite's refusal of an exchange (a ``TokenException``) names this
#: field: "Invalid `api_key`." or "Invalid `checksum`." (signed with the API secret).
SETTINGS_REFUSED = {"`api_key`": "KITE_API_KEY", "`checksum`": "KITE_API_SECRET"}


def request_token_from(url: str) -> Secret:
    """The ``request_token`` of Kite's redirect URL; :class:`LoginError` if it has none."""
    query = parse_qs(urlsplit(url.strip()).query)
    status = query.get("status", ["success"])[0]
    token = query.get("request_token", [""])[0]
    if status != "success" or not token:
        raise LoginError(
            f"the redirect URL carries no request_token (status {status!r}): "
            "copy the whole address Kite redirected the browser to"
        )
    return Secret(token)


def checksum(api_key: Secret, request_token: Secret, api_secret: Secret) -> str:
    """Kite's signature of a session request: SHA-256 hex of key + token + secret."""
    text = api_key.reveal() + request_token.reveal() + api_secret.reveal()
    return hashlib.sha256(text.encode()).hexdigest()


async def exchange(
    api_key: Secret, api_secret: Secret, request_token: Secret, root: str = API_ROOT
) -> LoginResult:
    """The access token for ``request_token``; :class:`LoginError` with Kite's reason."""
    form = {
        "api_key": api_key.reveal(),
        "request_token": request_token.reveal(),
        "checksum": checksum(api_key, request_token, api_secret),
    }
    url = urljoin(root, SESSION_PATH)
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, verify=login_tls()) as client:
            response = await client.post(url, data=form, headers={"X-Kite-Version": "3"})
        answer = response.json()
    except httpx.HTTPError as exc:
        raise LoginError(f"cannot reach {LABEL} at {root}: {exc}") from None
    except ValueError:
        raise LoginError(f"{LABEL} answered HTTP {response.status_code}, not JSON") from None
    data = answer.get("data") if isinstance(answer, dict) else None
    if (
        answer.get("status") != "success"
        or not isinstance(data, dict)
        or not data.get("access_token")
    ):
        reason = str(answer.get("message") or "") if isinstance(answer, dict) else ""
        refused = f"{LABEL} refused the login: {reason or f'HTTP {response.status_code}'}"
        for field, setting in SETTINGS_REFUSED.items():
            if field in reason:
                raise CredentialError(f"{refused} — check {setting} in the settings")
        raise LoginError(refused)
    user_id = str(data.get("user_id") or "")
    log.info("%s: logged in as %s", LABEL, user_id or "the account")
    return LoginResult(saved={"KITE_ACCESS_TOKEN": str(data["access_token"])}, user_id=user_id)


async def page(values: Mapping[str, Any]) -> str:
    """Kite's login page (``KITE_LOGIN_URL``) for the Kite app ``KITE_API_KEY``."""
    query = urlencode({"api_key": values["KITE_API_KEY"].reveal(), "v": "3"})
    return f"{values['KITE_LOGIN_URL'] or LOGIN_PAGE}?{query}"


async def finish(values: Mapping[str, Any], redirect: str) -> LoginResult:
    """The day's access token for the request token of Kite's ``redirect``."""
    return await exchange(
        values["KITE_API_KEY"],
        values["KITE_API_SECRET"],
        request_token_from(redirect),
        values["KITE_API_URL"] or API_ROOT,
    )


BROWSER_LOGIN = BrowserLogin(
    redirect_setting="KITE_REDIRECT_URL",
    required=("KITE_API_KEY", "KITE_API_SECRET"),
    page=page,
    finish=finish,
)
