"""Angel One's session: SmartAPI's REST login with PIN and TOTP, renewed by refresh token.

``loginByPassword`` takes the client code, the PIN and the current TOTP code (made here with
pyotp from the trader's TOTP secret) and answers the day's JWT, refresh token and feed token.
When the broker refuses the session, :class:`AngelSession` first renews it through
``generateTokens`` with the refresh token, and logs in afresh when that is refused too. Without a
PIN and TOTP secret the session is the feed token and JWT pasted into the settings.

The broker's refusals are reported in its own words (``message`` and ``errorcode``). A login
refused for its settings (:data:`SETTINGS_REFUSED`) is a
:class:`~backend.brokers.session.CredentialError` naming the settings to check, and is not tried
again; a refused refresh token is not one (a fresh login follows). No PIN, secret or token reaches
a log line or an error.
"""

from __future__ import annotations

import binascii
import logging
from typing import Any
from urllib.parse import urljoin

import httpx
import pyotp

from backend.brokers.angel.adapter import SmartStreamCredentials, bearer
from backend.brokers.session import BrokerSession, CredentialError, LoginError, login_tls
from backend.security.secret import Secret

log = logging.getLogger("feedpool.angel")

LOGIN_PATH = "/rest/auth/angelbroking/user/v1/loginByPassword"
RENEW_PATH = "/rest/auth/angelbroking/jwt/v1/generateTokens"
TIMEOUT = 10.0
LABEL = "Angel One"
#: The settings to check when ``loginByPassword`` answers these error codes: a wrong client code
#: or PIN (AB1007), a password where the MPIN belongs (AB7001), a wrong TOTP code (AB1050) and
#: the API gateway's wrong API key (AG8004). Other codes (AB1004 "Something Went Wrong" ...) are
#: the broker's trouble, tried again.
SETTINGS_REFUSED = {
    "AB1007": "ANGEL_CLIENT_CODE and ANGEL_PIN",
    "AB7001": "ANGEL_PIN (the MPIN)",
    "AB1050": "ANGEL_TOTP_SECRET",
    "AG8004": "ANGEL_API_KEY",
}


class AngelSession(BrokerSession):
    """One Angel One account's SmartAPI session."""

    label = LABEL

    def __init__(
        self,
        root: str,
        client_code: str,
        api_key: Secret,
        *,
        pin: Secret,
        totp_secret: Secret,
        pasted: SmartStreamCredentials | None = None,
        **options: float,
    ) -> None:
        super().__init__(**options)
        self.root = root
        self.client_code = client_code
        self._api_key = api_key
        self._pin = pin
        self._totp_secret = totp_secret
        self._pasted = pasted
        self._refresh_token = Secret("")
        self.can_renew = bool(pin and totp_secret)

    async def _begin(self) -> SmartStreamCredentials:
        """A login; the pasted tokens when there is nothing to log in with, or the login fails
        (and no login is tried again when the broker refused the settings)."""
        if not self.can_renew:
            if self._pasted is None:
                raise LoginError("ANGEL_PIN and ANGEL_TOTP_SECRET, or a feed token and JWT, needed")
            return self._pasted
        return await self._login_else(self._pasted, "the pasted feed token and JWT")

    async def _renew(self, refused: Any) -> SmartStreamCredentials:
        if self._refresh_token:
            try:
                return await self._call(
                    RENEW_PATH,
                    {"refreshToken": self._refresh_token.reveal()},
                    "renew the session",
                    jwt=refused.auth_token if refused is not None else None,
                )
            except LoginError as exc:
                log.info("%s: the refresh token was refused (%s); logging in again", LABEL, exc)
        return await self._login()

    async def _login(self) -> SmartStreamCredentials:
        try:
            code = pyotp.TOTP(self._totp_secret.reveal()).now()
        except (binascii.Error, ValueError):
            raise CredentialError(
                "ANGEL_TOTP_SECRET is not a base32 TOTP secret (the text under Angel One's "
                "authenticator QR code) — check it in the settings"
            ) from None
        body = {"clientcode": self.client_code, "password": self._pin.reveal(), "totp": code}
        credentials = await self._call(LOGIN_PATH, body, "log in", settings=SETTINGS_REFUSED)
        log.info("%s: logged in as %s", LABEL, self.client_code)
        return credentials

    async def _call(
        self,
        path: str,
        body: dict[str, str],
        what: str,
        jwt: Secret | None = None,
        settings: dict[str, str] | None = None,
    ) -> SmartStreamCredentials:
        """POST ``body`` to one of SmartAPI's session routes; the credentials it answers.

        A refusal whose error code ``settings`` names is a :class:`CredentialError`."""
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "X-UserType": "USER",
            "X-SourceID": "WEB",
            "X-ClientLocalIP": "127.0.0.1",
            "X-ClientPublicIP": "127.0.0.1",
            "X-MACAddress": "00:00:00:00:00:00",
            "X-PrivateKey": self._api_key.reveal(),
        }
        if jwt:
            headers["Authorization"] = bearer(jwt.reveal())
        url = urljoin(self.root, path)
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT, verify=login_tls()) as client:
                response = await client.post(url, json=body, headers=headers)
            answer = response.json()
        except httpx.HTTPError as exc:
            raise LoginError(f"cannot reach {LABEL} at {self.root} to {what}: {exc}") from None
        except ValueError:
            raise LoginError(
                f"{LABEL} answered HTTP {response.status_code} to {what}, not JSON"
            ) from None
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict) or not answer.get("status") or "jwtToken" not in data:
            reason = f"{LABEL} refused to {what}: {refusal(answer, response)}"
            wrong = (settings or {}).get(error_code(answer))
            if wrong:
                raise CredentialError(f"{reason} — check {wrong} in the settings")
            raise LoginError(reason)
        self._refresh_token = Secret(str(data.get("refreshToken") or ""))
        return SmartStreamCredentials(
            self.client_code,
            self._api_key,
            Secret(str(data.get("feedToken") or "")),
            Secret(str(data["jwtToken"])),
        )


def error_code(answer: Any) -> str:
    """The error code of a refusal: SmartAPI's ``errorcode``, or the gateway's ``errorCode``."""
    if not isinstance(answer, dict):
        return ""
    return str(answer.get("errorcode") or answer.get("errorCode") or "")


def refusal(answer: Any, response: httpx.Response) -> str:
    """The broker's reason for a refusal: its message and error code, or the HTTP status."""
    if isinstance(answer, dict):
        message = answer.get("message") or answer.get("errorMessage") or ""
        code = error_code(answer)
        if message or code:
            return f"{message} ({code})" if code else str(message)
    return f"HTTP {response.status_code}"
