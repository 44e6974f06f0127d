"""A local web server at a broker app's redirect URL, catching where a browser login ends.

A broker whose login the trader completes in the browser then sends the browser to the redirect
URL registered with the trader's broker app. When that URL is plain http on this machine
(:func:`catchable`: ``http://127.0.0.1:PORT/path`` or ``localhost``), :class:`RedirectCatcher`
listens there during the login and hands over each full address the browser reaches on that
path, query and all, whatever the broker put in it: reading it is the broker's
(:attr:`backend.brokers.broker.BrowserLogin.finish`). The browser is shown a page saying the tab
may be closed. Nothing is logged of the address, which carries the broker's one-time token.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from aiohttp import web

from backend.brokers.session import LoginError

LOCAL_HOSTS = ("127.0.0.1", "localhost")
CAUGHT_PAGE = (
    "<!doctype html><title>FeedPool</title>"
    "<p>FeedPool has the address your broker sent. You may close this tab.</p>"
)


def catchable(redirect_url: str) -> bool:
    """Whether the browser's redirect to ``redirect_url`` can be caught here: plain http to this
    machine, on a valid port."""
    parts = urlsplit(redirect_url.strip())
    try:
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        return False
    return parts.scheme == "http" and parts.hostname in LOCAL_HOSTS


class RedirectCatcher:
    """Listens at ``redirect_url`` while in an ``async with``; ``caught(url)`` is called with
    every address the browser reaches on its path.

    Port 0 takes a free port (:attr:`url` then names it). :class:`LoginError` on entering if the
    port is taken.
    """

    def __init__(self, redirect_url: str, caught: Callable[[str], object]) -> None:
        if not catchable(redirect_url):
            raise ValueError(f"{redirect_url!r} is not an http:// address on this machine")
        parts = urlsplit(redirect_url.strip())
        self._host = parts.hostname
        self._port = parts.port or 80
        self._path = parts.path or "/"
        self._caught = caught
        self._runner: web.AppRunner | None = None
        self.url = redirect_url

    async def __aenter__(self) -> RedirectCatcher:
        app = web.Application()
        app.router.add_get(self._path, self._redirected)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self._host, self._port).start()
        except OSError as exc:
            await self._runner.cleanup()
            raise LoginError(
                f"cannot listen on {self._host}:{self._port} for the login's redirect: "
                f"{exc.strerror or exc}"
            ) from None
        port = self._runner.addresses[0][1]
        self.url = f"http://{self._host}:{port}{self._path}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._runner.cleanup()

    async def _redirected(self, request: web.Request) -> web.Response:
        self._caught(str(request.url))
        return web.Response(text=CAUGHT_PAGE, content_type="text/html")
