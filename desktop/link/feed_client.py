"""The app's client of the backend's WebSocket API: the watchlist's subscriptions and its ticks.

The app is an ordinary client of the API (PROTOCOLS.md, section 1): it authenticates with the
backend's API key, subscribes in the bulk form (one request per mode, at most :data:`CHUNK` symbols
each) and unsubscribes each symbol in the mode it holds. Every message received goes to
``deliver``: ``market_data`` ticks and ``subscribe`` replies, which the window shows; refused
requests are also logged.

:class:`FeedClient` remembers what the watchlist wants. :meth:`FeedClient.connect_to` points it
at a backend; from then on it stays connected, reconnecting after a drop, and each new connection
subscribes everything wanted again, so neither a restarted backend nor a dropped connection loses
a symbol. One task per connection sends the requests, in the order they were made. Each change
of the connection's state (:data:`CONNECTED`, :data:`RECONNECTING`, :data:`FAILED`) is reported.

A ``wss://`` API is trusted by the pinned fingerprint of its certificate (the backend's
``tls_fingerprint``), checked with :mod:`backend.tls` before the API key is sent; or by a CA file,
or the system's CAs, with the usual checks of the certificate and the host name. A backend that
refuses the API key, or whose certificate is not the pinned one or is not trusted, is not dialled
again: the client stops with the reason in :attr:`FeedClient.refusal` until it is pointed at a
backend again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from backend.symbol_lists import WatchEntry
from backend.tls import FingerprintMismatch, check_pinned, pinned_client_context

log = logging.getLogger("feedpool.desktop.feed")

CHUNK = 1000
#: Messages already received are taken without waiting; after this many in a row the loop gets
#: a turn, so a burst (a backlog after a busy moment) cannot hold up painting.
BURST = 100
OPEN_TIMEOUT = 10.0
#: A ping this often, a connection given up if its pong is this late, and given this long to
#: close: a network that drops without closing (a sleeping laptop, a pulled cable) is found
#: within 17 s, about as soon as on the bus.
PING_SECONDS, PONG_TIMEOUT, CLOSE_TIMEOUT = 5.0, 10.0, 2.0
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)

CONNECTED, RECONNECTING, FAILED = "connected", "reconnecting", "failed"

FeedDeliver = Callable[[dict[str, Any]], None]
#: Told each state the connection reaches (:data:`CONNECTED`, ...) and a detail for people.
FeedReport = Callable[[str, str], None]


class AuthenticationFailed(Exception):
    """The backend refused the API key."""


def trust(pin: str, ca_file: str) -> ssl.SSLContext:
    """The TLS context of a ``wss://`` API trusted by its certificate's fingerprint ``pin``
    (checked once connected), else by ``ca_file`` or the system's CAs."""
    return pinned_client_context() if pin else ssl.create_default_context(cafile=ca_file or None)


def _chunks(items: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def subscribe_requests(entries: Iterable[WatchEntry]) -> list[str]:
    """Bulk subscribe requests for ``entries``: one per mode (and per :data:`CHUNK` symbols)."""
    by_mode: dict[int, list[dict[str, Any]]] = {}
    for entry in entries:
        by_mode.setdefault(entry.mode, []).append(
            {"symbol": entry.symbol, "exchange": entry.exchange}
        )
    return [
        json.dumps({"action": "subscribe", "symbols": chunk, "mode": mode})
        for mode, symbols in by_mode.items()
        for chunk in _chunks(symbols)
    ]


def unsubscribe_requests(entries: Iterable[WatchEntry]) -> list[str]:
    """Unsubscribe requests for ``entries``, each symbol with its own mode."""
    symbols = [
        {"symbol": entry.symbol, "exchange": entry.exchange, "mode": entry.mode}
        for entry in entries
    ]
    return [json.dumps({"action": "unsubscribe", "symbols": chunk}) for chunk in _chunks(symbols)]


class FeedClient:
    """Keeps the wanted symbols subscribed on the backend it was last pointed at."""

    def __init__(self, deliver: FeedDeliver, report: FeedReport | None = None) -> None:
        self._deliver = deliver
        self._report = report or (lambda state, detail: None)
        self._wanted: dict[tuple[str, str], WatchEntry] = {}
        self._outbox: asyncio.Queue[str] | None = None
        self._websocket: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        #: Why the backend last pointed at is not dialled any more (it refused the API key, or its
        #: certificate is not trusted); empty while it is.
        self.refusal = ""

    @property
    def connected(self) -> bool:
        """Authenticated, with everything wanted asked for."""
        return self._outbox is not None

    @property
    def local_address(self) -> str:
        """``host:port`` this client connects from, as the backend names its peers; "" while it
        is not connected."""
        if self._websocket is None:
            return ""
        host, port = self._websocket.local_address[:2]
        return f"{host}:{port}"

    def wanted(self) -> list[WatchEntry]:
        return list(self._wanted.values())

    def subscribe(self, entries: Iterable[WatchEntry]) -> None:
        entries = list(entries)
        self._wanted.update((entry.key, entry) for entry in entries)
        self._send(subscribe_requests(entries))

    def unsubscribe(self, entries: Iterable[WatchEntry]) -> None:
        entries = [entry for entry in entries if self._wanted.pop(entry.key, None) is not None]
        self._send(unsubscribe_requests(entries))

    def _send(self, requests: list[str]) -> None:
        # Not connected: the next connection asks for everything wanted anyway.
        if self._outbox is not None:
            for request in requests:
                self._outbox.put_nowait(request)

    def connect_to(self, url: str, api_key: str, *, pin: str = "", ca_file: str = "") -> None:
        """Leave any backend and stay connected to the one at ``url`` from now on; a ``wss://``
        API is trusted by its certificate's fingerprint ``pin``, else by ``ca_file`` or the
        system's CAs."""
        self.close()
        self.refusal = ""
        options = {"ssl": trust(pin, ca_file)} if url.startswith("wss://") else {}
        self._task = asyncio.get_running_loop().create_task(self._run(url, api_key, pin, options))

    def close(self) -> None:
        """Leave the backend at once: the connection is dropped without a closing handshake (the
        app leaves a backend only when it is stopping or gone)."""
        self._outbox = None
        if self._websocket is not None:
            self._websocket.transport.abort()
            self._websocket = None
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self, url: str, api_key: str, pin: str, options: dict[str, Any]) -> None:
        failures = 0
        while True:
            try:
                async with connect(
                    url,
                    compression=None,
                    open_timeout=OPEN_TIMEOUT,
                    ping_interval=PING_SECONDS,
                    ping_timeout=PONG_TIMEOUT,
                    close_timeout=CLOSE_TIMEOUT,
                    **options,
                ) as websocket:
                    self._websocket = websocket
                    if pin:
                        check_pinned(websocket.transport.get_extra_info("ssl_object"), pin)
                    await self._authenticate(websocket, api_key)
                    failures = 0
                    log.info("Feed connected to %s", url)
                    self._report(CONNECTED, "")
                    await self._serve(websocket)
                    reason = f"closed ({websocket.close_reason or 'no reason'})"
                    log.info("Feed from %s %s", url, reason)
            except AuthenticationFailed as exc:
                self._refused(url, f"the backend refused the app's API key: {exc}")
                return
            except (FingerprintMismatch, ssl.SSLCertVerificationError) as exc:
                self._refused(url, f"its certificate is not trusted: {exc}")
                return
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
                reason = f"lost: {str(exc) or type(exc).__name__}"
                if not failures:
                    log.warning("Feed from %s %s; reconnecting", url, reason)
            finally:
                self._outbox = None
                self._websocket = None
            delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
            self._report(RECONNECTING, f"{reason}; trying again in {delay:g} s")
            await asyncio.sleep(delay)
            failures += 1

    def _refused(self, url: str, why: str) -> None:
        log.error("Feed from %s stopped: %s", url, why)
        self.refusal = why
        self._report(FAILED, why)

    async def _authenticate(self, websocket: ClientConnection, api_key: str) -> None:
        await websocket.send(json.dumps({"action": "authenticate", "api_key": api_key}))
        try:
            reply = json.loads(await websocket.recv())
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            raise AuthenticationFailed("the reply is not a JSON object")
        if reply.get("type") != "auth" or reply.get("status") != "success":
            raise AuthenticationFailed(reply.get("message") or reply)

    async def _serve(self, websocket: ClientConnection) -> None:
        """Ask for everything wanted, then send requests and take messages until it closes."""
        outbox: asyncio.Queue[str] = asyncio.Queue()
        for request in subscribe_requests(self._wanted.values()):
            outbox.put_nowait(request)
        self._outbox = outbox
        sender = asyncio.get_running_loop().create_task(self._send_from(outbox, websocket))
        taken = 0
        try:
            async for frame in websocket:
                self._receive(frame)
                taken += 1
                if taken % BURST == 0:
                    await asyncio.sleep(0)
        finally:
            sender.cancel()

    @staticmethod
    async def _send_from(outbox: asyncio.Queue[str], websocket: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await websocket.send(await outbox.get())

    def _receive(self, frame: str | bytes) -> None:
        try:
            message = orjson.loads(frame)
        except orjson.JSONDecodeError:
            log.warning("Ignored a feed message that is not JSON")
            return
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        if kind == "error":
            log.warning(
                "The backend refused a request: %s (%s)",
                message.get("message"),
                message.get("code"),
            )
        elif kind == "unsubscribe" and message.get("failed"):
            failed = message["failed"]
            log.warning("%d symbols could not be unsubscribed: %s", len(failed), failed[0])
        try:
            self._deliver(message)
        except Exception:  # one bad message must not stop the feed
            log.exception("Could not show a %s message", kind)
