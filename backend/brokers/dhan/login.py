"""Dhan's session: the day's access token, renewed through ``RenewToken`` before it expires.

A Dhan access token lasts 24 hours; the trader pastes one made on web.dhan.co, or the browser
login (:mod:`backend.brokers.dhan.consent`) saves one in the settings. :class:`DhanSession`
begins with that token and renews it through ``GET {DHAN_API_URL}/RenewToken`` (headers
``access-token`` and ``dhanClientId``), which expires the token it is given and answers a new
one for 24 hours:

- before the token expires, at :data:`RENEW_BEFORE_EXPIRY` ahead of the expiry its JWT payload
  names (a token whose expiry cannot be read is renewed only when Dhan refuses it);
- when Dhan refuses a connection for the token (807 expired, 808, 809), once for every
  connection refused.

The renewed token is kept in memory only: the backend writes no settings, for any broker. After
a renewal the token in the settings is the one Dhan expired, so a backend started again needs a
new one (the browser login, or one pasted). A renewal Dhan refuses (an expired or unknown token)
is a :class:`~backend.brokers.session.CredentialError`, not tried again; one that fails for the
network or Dhan's server is tried again after a growing wait. No token reaches a log line or an
error.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from typing import Any

import httpx

from backend.brokers.dhan.adapter import LABEL, DhanCredentials
from backend.brokers.session import BrokerSession, CredentialError, LoginError, login_tls
from backend.security.secret import Secret

log = logging.getLogger("feedpool.dhan")

API_ROOT = "https://api.dhan.co/v2"
RENEW_PATH = "/RenewToken"
TIMEOUT = 10.0
#: How long before its expiry a token is renewed.
RENEW_BEFORE_EXPIRY = 15 * 60.0
NEW_TOKEN = (
    "log in to Dhan again (the browser login) or paste a new DHAN_ACCESS_TOKEN in the settings"
)


def token_expiry(token: Secret) -> float | None:
    """When an access token expires, in epoch seconds: the ``exp`` of its JWT payload; None
    when the token is not a JWT that names one."""
    parts = token.reveal().split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        return None
    expiry = payload.get("exp") if isinstance(payload, dict) else None
    return (
        float(expiry) if isinstance(expiry, int | float) and not isinstance(expiry, bool) else None
    )


class Refused(LoginError):
    """Dhan refused a REST call (any status but 200, below 500), in its words; ``status`` is the
    HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


async def call(method: str, url: str, headers: dict[str, str], what: str) -> dict[str, Any]:
    """Dhan's JSON answer to a REST call, which ``what`` names in errors.

    :class:`LoginError` when Dhan cannot be reached, or answers with a server error or with
    something other than a JSON object; :class:`Refused` when it refuses the call. The reason is
    Dhan's ``errorMessage`` (or ``message``) and ``errorCode``, never a header sent.
    """
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, verify=login_tls()) as client:
            response = await client.request(method, url, headers=headers)
        answer = response.json()
    except httpx.HTTPError as exc:
        raise LoginError(f"cannot reach {LABEL} to {what}: {exc}") from None
    except ValueError:
        raise LoginError(
            f"{LABEL} answered HTTP {response.status_code} to {what}, not JSON"
        ) from None
    status = response.status_code
    if status >= 500 or not isinstance(answer, dict):
        raise LoginError(f"{LABEL} could not {what}: HTTP {status}")
    if status != 200:
        raise Refused(f"{LABEL} refused to {what}: {reason(answer, status)}", status)
    return answer


def reason(answer: dict[str, Any], status: int) -> str:
    """Dhan's reason for a refusal: its message and error code, or the HTTP status."""
    message = answer.get("errorMessage") or answer.get("message") or ""
    code = answer.get("errorCode") or ""
    if message and code:
        return f"{message} ({code})"
    return str(message or code or f"HTTP {status}")


class DhanSession(BrokerSession):
    """One Dhan account's access token, renewed before it expires and when Dhan refuses it."""

    label = LABEL
    can_renew = True

    def __init__(self, root: str, client_id: str, access_token: Secret, **options: float) -> None:
        super().__init__(**options)
        self.root = root.rstrip("/")
        self.client_id = client_id
        self._pasted = DhanCredentials(client_id, access_token)
        self._schedule: asyncio.Task[None] | None = None

    async def _begin(self) -> DhanCredentials:
        if not self.client_id or not self._pasted.access_token:
            raise CredentialError(f"DHAN_CLIENT_ID and DHAN_ACCESS_TOKEN needed: {NEW_TOKEN}")
        self._schedule = asyncio.get_running_loop().create_task(self._renew_before_expiry())
        return self._pasted

    async def close(self) -> None:
        if self._schedule is not None:
            self._schedule.cancel()
            await asyncio.gather(self._schedule, return_exceptions=True)
        await super().close()

    async def _renew_before_expiry(self) -> None:
        """Renew each token :data:`RENEW_BEFORE_EXPIRY` before it expires, for as long as the
        tokens name their expiry; a token renewed meanwhile is waited for afresh."""
        while (expiry := token_expiry((current := self.credentials).access_token)) is not None:
            await asyncio.sleep(max(expiry - RENEW_BEFORE_EXPIRY - time.time(), 0.0))
            if self.credentials is current:
                log.info("%s: the access token expires soon; renewing it", LABEL)
                await self.renewed(current)

    async def _renew(self, refused: Any) -> DhanCredentials:
        token = (refused or self.credentials).access_token
        headers = {"access-token": token.reveal(), "dhanClientId": self.client_id}
        try:
            answer = await call("GET", self.root + RENEW_PATH, headers, "renew the access token")
        except Refused as exc:  # an expired or unknown token: renewing it again cannot help
            raise CredentialError(f"{exc}: {NEW_TOKEN}") from None
        # Chosen: ``accessToken``, as the consent's answer names it; ``token`` too, as some
        # report the renewal's (the official client reads no field of it).
        renewed = answer.get("accessToken") or answer.get("token")
        if not isinstance(renewed, str) or not renewed:
            raise CredentialError(f"{LABEL} answered a renewal with no access token: {NEW_TOKEN}")
        log.info("%s: access token renewed for %s", LABEL, self.client_id)
        return DhanCredentials(self.client_id, Secret(renewed))
