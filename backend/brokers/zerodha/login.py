"""Zerodha Kite's login: the browser flow that gives the day's access token.

Kite has no unattended login. The trader signs in on Kite's login page
(:func:`login_page`); Kite redirects the browser to the Kite app's registered redirect URL with
a one-time ``request_token``. :class:`RedirectCatcher` listens at that URL on this machine and
catches the token (:func:`request_token_from` reads one from a pasted redirect URL instead).
:func:`exchange` trades it for the access token through ``POST /session/token``, signed with
the checksum SHA-256(api_key + request_token + api_secret).

The access token lasts until the next morning; when Kite refuses it the trader logs in again.
An exchange Kite refuses for the Kite app's API key or secret is a
:class:`~backend.brokers.session.CredentialError` naming the setting to check. No key, secret or
token reaches a log line or an error.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
from aiohttp import web

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
CAUGHT_PAGE = (
    "<!doctype html><title>FeedPool</title><p>FeedPool has your Kite login. "
    "You may close this tab.</p>"
)


@dataclass(frozen=True)
class KiteSession:
    """The day's Kite session: what ``/session/token`` answered."""

    access_token: Secret
    user_id: str


def login_page(api_key: Secret, page: str = LOGIN_PAGE) -> str:
    """The URL of Kite's login page for the Kite app ``api_key``."""
    return f"{page}?{urlencode({'api_key': api_key.reveal(), 'v': '3'})}"


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
) -> KiteSession:
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
    return KiteSession(Secret(str(data["access_token"])), user_id)


class RedirectCatcher:
    """A local web server at the Kite app's redirect URL that catches one ``request_token``.

    ``redirect_url`` is the app's registered redirect, e.g. ``http://127.0.0.1:5010/kite``; it
    must name this machine. Port 0 takes a free port (:attr:`url` then names it).
    """

    def __init__(self, redirect_url: str) -> None:
        parts = urlsplit(redirect_url)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
            raise LoginError(
                f"the Kite redirect URL {redirect_url!r} must be http://127.0.0.1:PORT/... "
                "for FeedPool to catch the login on this machine"
            )
        self._host = parts.hostname
        self._port = parts.port or 80
        self._path = parts.path or "/"
        self._caught: asyncio.Future[Secret] | None = None
        self._runner: web.AppRunner | None = None
        self.url = redirect_url

    async def start(self) -> None:
        """Listen; :class:`LoginError` if the redirect URL's port is taken."""
        self._caught = asyncio.get_running_loop().create_future()
        app = web.Application()
        app.router.add_get(self._path, self._redirected)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await site.start()
        except OSError as exc:
            await self.stop()
            raise LoginError(
                f"cannot listen for Kite's redirect on {self._host}:{self._port}: "
                f"{exc.strerror or exc}"
            ) from None
        port = self._runner.addresses[0][1]
        self.url = f"http://{self._host}:{port}{self._path}"

    async def request_token(self, timeout: float | None = None) -> Secret:
        """The token the browser brings back, once it arrives."""
        if self._caught is None:
            raise RuntimeError("the catcher is not started")
        try:
            return await asyncio.wait_for(asyncio.shield(self._caught), timeout)
        except TimeoutError:
            raise LoginError("no login came back from Kite in time") from None

    async def _redirected(self, request: web.Request) -> web.Response:
        try:
            token = request_token_from(str(request.url))
        except LoginError as exc:
            return web.Response(status=400, text=f"FeedPool: {exc}")
        if self._caught is not None and not self._caught.done():
            self._caught.set_result(token)
        return web.Response(text=CAUGHT_PAGE, content_type="text/html")

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
