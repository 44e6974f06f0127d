"""A Noren vendor's session: a pasted or browser-saved token, or the legacy ``QuickAuth``.

Every vendor's session can be the day's token in ``<PREFIX>_ACCESS_TOKEN``: pasted, or saved by
the browser login (:mod:`backend.brokers.noren.oauth`). It opens the WebSocket with the vendor's
connect (``t:"a"``, the OAuth generation's ``accesstoken``). Noren sessions end daily (Flattrade's
at 05:00 IST); such a session cannot renew itself, and says to log in again.

A vendor that still offers ``QuickAuth`` (:attr:`Vendor.quickauth_root`: Zebu) logs in
unattended when ``<PREFIX>_PASSWORD``, ``<PREFIX>_TOTP_SECRET``, ``<PREFIX>_VENDOR_CODE`` and
``<PREFIX>_API_SECRET`` are set, and logs in again when the vendor ends the session:
``POST {quickauth root}/QuickAuth`` with the raw body ``jData=<json>`` (no ``jKey``, no
Content-Type, as the official client sends it): ``uid``, ``pwd`` (SHA-256 hex of the password),
``factor2`` (the TOTP code, made with pyotp from the TOTP secret), ``vc`` (the vendor code),
``appkey`` (SHA-256 hex of ``uid|api secret``), ``imei``, ``apkversion`` and ``source``. Its
``susertoken`` opens the socket with the legacy connect (``t:"c"``). Chosen (no source says
whether the OAuth generation's socket takes the legacy connect): the same ``<PREFIX>_WS_URL`` as
the OAuth token; the legacy socket (Zebu's ``wss://go.mynt.in/NorenWSTP/``) is one setting away.

Noren answers a refusal ``{"stat": "Not_Ok", "emsg": ...}``; the error says its ``emsg``. Chosen:
every refused ``QuickAuth`` is a :class:`~backend.brokers.session.CredentialError` (wrong
passwords lock the account, so none is tried again), naming the setting its ``emsg`` points at
(:data:`QUICKAUTH_REFUSED`), or every login setting when it names none. No password, secret or
token reaches a log line or an error.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyotp

from backend.brokers.broker import BrokerSetting
from backend.brokers.noren.adapter import NorenCredentials
from backend.brokers.noren.protocol import LEGACY_CONNECT
from backend.brokers.noren.vendors import Vendor
from backend.brokers.session import BrokerSession, CredentialError, LoginError, login_tls
from backend.security.secret import Secret

log = logging.getLogger("feedpool.noren")

QUICKAUTH_PATH = "/QuickAuth"
TIMEOUT = 10.0
OK = "Ok"
#: The app version the official client sends, and the device FeedPool names itself as.
APK_VERSION, IMEI = "1.0.0", "feedpool"
#: The setting (after the vendor's prefix) a ``QuickAuth`` refusal points at, by a word of its
#: ``emsg`` (lower case), first match first.
QUICKAUTH_REFUSED = (
    ("password", "PASSWORD"),
    ("otp", "TOTP_SECRET"),
    ("factor", "TOTP_SECRET"),
    ("vendor", "VENDOR_CODE"),
    ("app", "API_SECRET"),
    ("user", "USER_ID"),
)
QUICKAUTH_SETTINGS = ("PASSWORD", "TOTP_SECRET", "VENDOR_CODE", "API_SECRET")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _reason(answer: Any, status: int) -> str:
    """Noren's reason for a refusal: its ``emsg``, or the HTTP status."""
    message = answer.get("emsg") if isinstance(answer, dict) else None
    return str(message) if message else f"HTTP {status}"


async def call(
    label: str, url: str, what: str, *, content: str = "", body: Any = None
) -> dict[str, Any]:
    """A Noren REST answer with ``stat: "Ok"`` (or, for the OAuth token, ``access_token``).

    ``content`` is sent as the raw body (``jData=...``), ``body`` as JSON. :class:`LoginError`
    when the vendor cannot be reached or answers a server error or no JSON object;
    :class:`Refused` (its ``emsg``) when it refuses. ``what`` names the call in errors.
    """
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, verify=login_tls()) as client:
            if body is not None:
                response = await client.post(url, json=body)
            else:
                response = await client.post(url, content=content.encode())
        answer = response.json()
    except httpx.HTTPError as exc:
        raise LoginError(f"cannot reach {label} at {url} to {what}: {exc}") from None
    except ValueError:
        raise LoginError(
            f"{label} answered HTTP {response.status_code} to {what}, not JSON"
        ) from None
    if response.status_code >= 500 or not isinstance(answer, dict):
        raise LoginError(f"{label} could not {what}: HTTP {response.status_code}")
    if answer.get("stat") != OK and not answer.get("access_token"):
        reason = _reason(answer, response.status_code)
        raise Refused(f"{label} refused to {what}: {reason}", reason)
    return answer


class Refused(LoginError):
    """The vendor refused a REST call (``stat: "Not_Ok"``); ``reason`` is its ``emsg``."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def refused_settings(
    refusal: Refused,
    vendor: Vendor,
    table: tuple[tuple[str, str], ...],
    every: tuple[str, ...] = (),
) -> LoginError:
    """``refusal`` as a :class:`CredentialError` naming the settings to check: the one of
    ``table`` a word of its text points at, else ``every``; as it is when neither names one."""
    named = next((setting for word, setting in table if word in refusal.reason.lower()), None)
    settings = (named,) if named else every
    if not settings:
        return refusal
    names = ", ".join(f"{vendor.prefix}_{setting}" for setting in settings)
    return CredentialError(f"{refusal} — check {names} in the settings")


class NorenSession(BrokerSession):
    """One Noren account's session: a ``QuickAuth`` login where the settings allow one, else
    the token the settings hold."""

    def __init__(
        self,
        vendor: Vendor,
        user_id: str,
        token: Secret,
        *,
        quickauth: Mapping[str, Any] | None = None,
        **options: float,
    ) -> None:
        super().__init__(**options)
        self.label = vendor.label
        self.vendor = vendor
        self.user_id = user_id
        self._pasted = NorenCredentials(user_id, token, vendor.connect) if token else None
        #: The QuickAuth root and settings (``PASSWORD`` ...), when the session logs in.
        self._quickauth = quickauth
        self.can_renew = quickauth is not None

    async def _begin(self) -> NorenCredentials:
        """A QuickAuth login; the token the settings hold when there is nothing to log in
        with, or the login fails (no login is tried again when the vendor refused the
        settings)."""
        if not self.user_id:
            raise CredentialError(f"{self.vendor.prefix}_USER_ID is needed")
        if not self.can_renew:
            if self._pasted is None:
                raise CredentialError(
                    f"no {self.vendor.label} session: log in (the browser login) or paste "
                    f"{self.vendor.prefix}_ACCESS_TOKEN in the settings"
                )
            return self._pasted
        return await self._login_else(self._pasted, "the pasted session token")

    async def _renew(self, refused: Any) -> NorenCredentials:
        return await self._login()

    async def _login(self) -> NorenCredentials:
        assert self._quickauth is not None
        prefix, values = self.vendor.prefix, self._quickauth
        try:
            factor2 = pyotp.TOTP(values["TOTP_SECRET"].reveal()).now()
        except (binascii.Error, ValueError):
            raise CredentialError(
                f"{prefix}_TOTP_SECRET is not a base32 TOTP secret (the key shown when the "
                f"authenticator was set up) — check {prefix}_TOTP_SECRET in the settings"
            ) from None
        fields = {
            "source": "API",
            "apkversion": APK_VERSION,
            "uid": self.user_id,
            "pwd": sha256(values["PASSWORD"].reveal()),
            "factor2": factor2,
            "vc": values["VENDOR_CODE"],
            "appkey": sha256(f"{self.user_id}|{values['API_SECRET'].reveal()}"),
            "imei": IMEI,
        }
        url = values["ROOT"].rstrip("/") + QUICKAUTH_PATH
        try:
            answer = await call(self.label, url, "log in", content="jData=" + json.dumps(fields))
        except Refused as exc:
            raise refused_settings(
                exc, self.vendor, QUICKAUTH_REFUSED, QUICKAUTH_SETTINGS
            ) from None
        token = answer.get("susertoken")
        if not isinstance(token, str) or not token:
            raise LoginError(f"{self.label} answered the login with no session token")
        log.info("%s: logged in as %s", self.label, self.user_id)
        return NorenCredentials(self.user_id, Secret(token), LEGACY_CONNECT)


def settings(vendor: Vendor) -> tuple[BrokerSetting, ...]:
    """``vendor``'s settings: the user, the session token, its browser login's and (where it
    offers one) QuickAuth's, and its WebSocket."""
    p = vendor.prefix
    quickauth = tuple(f"{p}_{name}" for name in QUICKAUTH_SETTINGS) if vendor.quickauth_root else ()
    if vendor.login == "flattrade":
        app = (
            BrokerSetting(f"{p}_API_KEY", "API key", "secret", required=False),
            BrokerSetting(f"{p}_API_SECRET", "API secret", "secret", required=False),
        )
    else:
        app = (
            BrokerSetting(f"{p}_CLIENT_ID", "OAuth client ID", required=False),
            BrokerSetting(f"{p}_SECRET_KEY", "OAuth secret key", "secret", required=False),
        )
    legacy = ()
    if vendor.quickauth_root:
        legacy = (
            BrokerSetting(f"{p}_PASSWORD", "Password (QuickAuth)", "secret", required=False),
            BrokerSetting(f"{p}_TOTP_SECRET", "TOTP secret (QuickAuth)", "secret", required=False),
            BrokerSetting(f"{p}_VENDOR_CODE", "Vendor code (QuickAuth)", required=False),
            BrokerSetting(f"{p}_API_SECRET", "API secret (QuickAuth)", "secret", required=False),
            BrokerSetting(
                f"{p}_QUICKAUTH_URL", "QuickAuth URL", "web", vendor.quickauth_root, required=False
            ),
        )
    return (
        BrokerSetting(f"{p}_USER_ID", "User ID"),
        BrokerSetting(
            f"{p}_ACCESS_TOKEN",
            "Session token",
            "secret",
            from_login=True,
            required_unless=quickauth,
        ),
        *app,
        BrokerSetting(
            f"{p}_REDIRECT_URL",
            "Redirect URL",
            "web",
            f"http://127.0.0.1:5010/{vendor.name}/callback",
            required=False,
        ),
        BrokerSetting(f"{p}_AUTH_URL", "Login page", "web", vendor.authorise_url, required=False),
        BrokerSetting(f"{p}_TOKEN_URL", "Token URL", "web", vendor.token_url, required=False),
        *legacy,
        BrokerSetting(f"{p}_WS_URL", "WebSocket URL", "url", vendor.ws_url, required=False),
    )


def session(vendor: Vendor, values: Mapping[str, Any]) -> NorenSession:
    """A QuickAuth login when the vendor offers it and its settings are all set, else the
    session token the settings hold."""
    p = vendor.prefix
    quickauth = None
    if vendor.quickauth_root and all(values[f"{p}_{name}"] for name in QUICKAUTH_SETTINGS):
        quickauth = {name: values[f"{p}_{name}"] for name in QUICKAUTH_SETTINGS}
        quickauth["ROOT"] = values[f"{p}_QUICKAUTH_URL"] or vendor.quickauth_root
    return NorenSession(
        vendor, values[f"{p}_USER_ID"], values[f"{p}_ACCESS_TOKEN"], quickauth=quickauth
    )


def _path(url: str) -> str:
    return urlsplit(url).path.rstrip("/")


def simulator_settings(vendor: Vendor, account: Any, rest: str) -> dict[str, str]:
    """The settings that log in to the simulator's account as to ``vendor``'s: QuickAuth where
    the vendor offers it, and the browser login's, whose token the fixed one stands for."""
    p = vendor.prefix
    values = {
        f"{p}_USER_ID": account.client_code,
        f"{p}_ACCESS_TOKEN": account.access_token,
        f"{p}_REDIRECT_URL": account.redirect_url,
        f"{p}_AUTH_URL": rest + urlsplit(vendor.authorise_url).path,
        f"{p}_TOKEN_URL": rest + _path(vendor.token_url),
    }
    if vendor.login == "flattrade":
        values |= {f"{p}_API_KEY": account.api_key, f"{p}_API_SECRET": account.api_secret}
    else:
        values |= {f"{p}_CLIENT_ID": account.oauth_client_id, f"{p}_SECRET_KEY": account.api_secret}
    if vendor.quickauth_root:
        values |= {
            f"{p}_PASSWORD": account.password,
            f"{p}_TOTP_SECRET": account.totp_secret,
            f"{p}_VENDOR_CODE": account.vendor_code,
            f"{p}_API_SECRET": account.api_secret,
            f"{p}_QUICKAUTH_URL": rest + _path(vendor.quickauth_root),
        }
    return values


def simulator_credentials(vendor: Vendor, account: Any) -> NorenCredentials:
    return NorenCredentials(account.client_code, Secret(account.access_token), vendor.connect)


def user_id(session: Any) -> str:
    return str(session.user_id)
