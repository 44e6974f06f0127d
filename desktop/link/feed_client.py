"""The app's client of the backend's WebSocket API: the watchlist's subscriptions and its ticks.

The app is an ordinary client of the API (README, "The backend process and its client API"): it
authenticates with the backend's API key and subscribes in the bulk form, in the watchlist's
order (a request per run of rows in one mode, at most :data:`CHUNK` symbols each): the backend
carries out a client's requests in the order sent and places a request's symbols in order, so the
first rows that fit are served. It unsubscribes only what the backend confirmed it holds, each
symbol in the mode held: a row refused, or removed before its answer came, is not unsubscribed
(a confirmation that comes for a row removed or given another mode meanwhile is let go of then),
and a row given a new mode lets go of the old one once the new one is confirmed, so it keeps its
slot throughout. Every message received is offered to ``take`` first, undecoded (the watchlist
takes its rows' ticks so, and decodes only those it shows); the others are decoded and go to
``deliver``: ``market_data`` ticks and ``subscribe`` replies, which the window shows; refused
requests are also logged, and unsubscriptions that failed in one line saying how many.

:class:`FeedClient` remembers what the watchlist wants. :meth:`FeedClient.connect_to` points it
at a backend; from then on it stays connected, reconnecting after a drop, and each new connection
subscribes everything wanted again, so neither a restarted backend nor a dropped connection loses
a symbol. Requests go out as they are made, in that order; messages are taken as picows parses
them (:mod:`desktop.link.feed_socket`). Each change of the connection's state
(:data:`CONNECTED`, :data:`RECONNECTING`, :data:`FAILED`) is reported.

A ``wss://`` API is trusted by the pinned fingerprint of its certificate (the backend's
``tls_fingerprint``), checked with :mod:`backend.security.tls` before the API key is sent; or by a
CA file, or the system's CAs, with the usual checks of the certificate and the host name. A backend
that refuses the API key, or whose certificate is not the pinned one or is not trusted, is not
dialled again: the client stops with the reason in :attr:`FeedClient.refusal` until it is pointed
at a backend again.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import ssl
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from operator import attrgetter
from typing import Any

import orjson
import picows

from backend.instruments.symbol_lists import WatchEntry
from backend.security.tls import FingerprintMismatch, check_pinned, pinned_client_context
from desktop.link.feed_socket import ConnectionLost, FeedSocket
from desktop.watchlist.importing import listed

log = logging.getLogger("feedpool.desktop.feed")
#: picows' own records (a line per connection at INFO) stay below the feed's.
WIRE_LOG = logging.getLogger("feedpool.desktop.feed.wire")
WIRE_LOG.setLevel(logging.WARNING)

CHUNK = 1000
OPEN_TIMEOUT = 10.0
#: A ping this often, and a connection given up if its pong is this late: a network that drops
#: without closing (a sleeping laptop, a pulled cable) is found within 15 s, about as soon as on
#: the bus.
PING_SECONDS, PONG_TIMEOUT = 5.0, 10.0
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)

CONNECTED, RECONNECTING, FAILED = "connected", "reconnecting", "failed"
#: The ``request_id`` of :meth:`FeedClient.set_session`'s request, echoed in its answer.
SESSION_REQUEST = "set_session"

FeedDeliver = Callable[[dict[str, Any]], None]
#: Offered each message as received: ``True`` if it took it, else it is decoded and delivered.
FeedTake = Callable[[bytes], bool]
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
    """Bulk subscribe requests for ``entries`` in their order: one per run of entries in one
    mode (and per :data:`CHUNK` symbols)."""
    requests = []
    for mode, run in itertools.groupby(entries, key=attrgetter("mode")):
        symbols = [{"symbol": entry.symbol, "exchange": entry.exchange} for entry in run]
        requests += [
            json.dumps({"action": "subscribe", "symbols": chunk, "mode": mode})
            for chunk in _chunks(symbols)
        ]
    return requests


def unsubscribe_requests(entries: Iterable[WatchEntry]) -> list[str]:
    """Unsubscribe requests for ``entries``, each symbol with its own mode."""
    symbols = [
        {"symbol": entry.symbol, "exchange": entry.exchange, "mode": entry.mode}
        for entry in entries
    ]
    return [json.dumps({"action": "unsubscribe", "symbols": chunk}) for chunk in _chunks(symbols)]


def unsubscribe_failures(failed: Sequence[Mapping[str, Any]]) -> str:
    """One line for the symbols an ``unsubscribe`` reply says could not be unsubscribed: how
    many, which, and why (how many of each code, and the first one's reason)."""
    names = [f"{item.get('exchange')}:{item.get('symbol')}" for item in failed]
    codes = Counter(str(item.get("code") or "refused") for item in failed)
    counted = ", ".join(f"{count} {code}" for code, count in codes.items())
    noun = "symbol" if len(names) == 1 else "symbols"
    return (
        f"{len(names)} {noun} could not be unsubscribed ({listed(names)}): {counted};"
        f" the first: {failed[0].get('message') or 'no reason given'}"
    )


class FeedClient:
    """Keeps the wanted symbols subscribed on the backend it was last pointed at."""

    def __init__(
        self,
        deliver: FeedDeliver,
        report: FeedReport | None = None,
        take: FeedTake | None = None,
    ) -> None:
        self._deliver = deliver
        self._report = report or (lambda state, detail: None)
        self._take = take or (lambda frame: False)
        #: What the watchlist wants, in its order (a row given a new mode keeps its place).
        self._wanted: dict[tuple[str, str], WatchEntry] = {}
        #: The modes the backend confirmed it holds for each symbol, on this connection.
        self._held: dict[tuple[str, str], set[int]] = {}
        #: The connection while it is authenticated, with everything wanted asked for.
        self._serving: FeedSocket | None = None
        self._socket: FeedSocket | None = None
        self._task: asyncio.Task[None] | None = None
        #: Why the backend last pointed at is not dialled any more (it refused the API key, or its
        #: certificate is not trusted); empty while it is.
        self.refusal = ""

    @property
    def connected(self) -> bool:
        """Authenticated, with everything wanted asked for."""
        return self._serving is not None

    @property
    def local_address(self) -> str:
        """``host:port`` this client connects from, as the backend names its peers; "" while it
        is not connected."""
        if self._socket is None or self._socket.transport is None:
            return ""
        host, port = self._socket.local_address
        return f"{host}:{port}"

    def wanted(self) -> list[WatchEntry]:
        return list(self._wanted.values())

    def held(self) -> dict[tuple[str, str], set[int]]:
        """The modes the backend confirmed it holds for each symbol, on this connection."""
        return {key: set(modes) for key, modes in self._held.items()}

    def subscribe(self, entries: Iterable[WatchEntry]) -> None:
        """Want ``entries`` (a symbol wanted in another mode: in this one, in its place) and
        ask for them, in their order."""
        entries = list(entries)
        self._wanted.update((entry.key, entry) for entry in entries)
        self._send(subscribe_requests(entries))

    def unsubscribe(self, entries: Iterable[WatchEntry]) -> None:
        """Want ``entries`` no more, and let go of the modes the backend holds them in."""
        held = [
            WatchEntry(entry.symbol, entry.exchange, mode)
            for entry in entries
            if self._wanted.pop(entry.key, None) is not None
            for mode in sorted(self._held.pop(entry.key, ()))
        ]
        self._send(unsubscribe_requests(held))

    def _confirmed(self, reply: Mapping[str, Any]) -> None:
        """Note what a ``subscribe`` reply confirms, and let go of what is not wanted (any more)
        in that mode: a row removed or given another mode while its request was under way, or
        the old mode of a row whose new one is confirmed."""
        stray: list[WatchEntry] = []
        for item in reply.get("subscriptions") or ():
            if item.get("status") != "success":
                continue
            key, mode = (str(item.get("symbol")), str(item.get("exchange"))), item.get("mode")
            held = self._held.pop(key, set())
            wanted = self._wanted.get(key)
            if wanted is not None and wanted.mode == mode:
                stray += [WatchEntry(*key, old) for old in sorted(held - {mode})]
                held = {mode}
            else:
                held.discard(mode)
                stray.append(WatchEntry(*key, mode))
            if held:
                self._held[key] = held
        self._send(unsubscribe_requests(stray))

    def set_session(self, account: str, settings: Mapping[str, str]) -> bool:
        """Give the backend's ``account`` the day's new session ``settings`` (``set_session``);
        whether it was asked (it is not while the feed is not connected). Its answer is
        delivered like every message, a refusal with :data:`SESSION_REQUEST` as its
        ``request_id``."""
        if self._serving is None:
            return False
        request = {
            "action": "set_session",
            "account": account,
            "settings": dict(settings),
            "request_id": SESSION_REQUEST,
        }
        self._serving.send(orjson.dumps(request).decode())
        return True

    def _send(self, requests: list[str]) -> None:
        # Not connected: the next connection asks for everything wanted anyway.
        if self._serving is not None:
            for request in requests:
                self._serving.send(request)

    def connect_to(self, url: str, api_key: str, *, pin: str = "", ca_file: str = "") -> None:
        """Leave any backend and stay connected to the one at ``url`` from now on; a ``wss://``
        API is trusted by its certificate's fingerprint ``pin``, else by ``ca_file`` or the
        system's CAs."""
        self.close()
        self.refusal = ""
        context = trust(pin, ca_file) if url.startswith("wss://") else None
        self._task = asyncio.get_running_loop().create_task(self._run(url, api_key, pin, context))

    def close(self) -> None:
        """Leave the backend at once: the connection is dropped without a closing handshake (the
        app leaves a backend only when it is stopping or gone)."""
        self._serving = None
        if self._socket is not None:
            self._socket.abort()
            self._socket = None
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self, url: str, api_key: str, pin: str, context: ssl.SSLContext | None) -> None:
        failures = 0
        while True:
            socket = self._socket = FeedSocket(self._receive, PING_SECONDS, PONG_TIMEOUT)
            try:
                await self._open(socket, url, context)
                if pin:
                    check_pinned(socket.ssl_object, pin)
                await self._authenticate(socket, api_key)
                failures = 0
                log.info("Feed connected to %s", url)
                self._report(CONNECTED, "")
                self._serve(socket)
                reason = f"closed ({await socket.ended() or 'no reason'})"
                log.info("Feed from %s %s", url, reason)
            except AuthenticationFailed as exc:
                socket.close()
                self._refused(url, f"the backend refused the app's API key: {exc}")
                return
            except (FingerprintMismatch, ssl.SSLCertVerificationError) as exc:
                socket.close()
                self._refused(url, f"its certificate is not trusted: {exc}")
                return
            except (OSError, TimeoutError, picows.WSError, ConnectionLost) as exc:
                reason = f"lost: {str(exc) or type(exc).__name__}"
                if not failures:
                    log.warning("Feed from %s %s; reconnecting", url, reason)
            finally:
                self._serving = None
                socket.abort()
                if self._socket is socket:
                    self._socket = None
            delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
            self._report(RECONNECTING, f"{reason}; trying again in {delay:g} s")
            await asyncio.sleep(delay)
            failures += 1

    @staticmethod
    async def _open(socket: FeedSocket, url: str, context: ssl.SSLContext | None) -> None:
        await asyncio.wait_for(
            picows.ws_connect(
                lambda: socket,
                url,
                ssl_context=context,
                websocket_handshake_timeout=OPEN_TIMEOUT,
                logger_name=WIRE_LOG,
                # The loop's own transports: aiofastnet's need add_reader(), which qasync's
                # loop on Windows (IOCP) does not have.
                use_aiofastnet=False,
            ),
            OPEN_TIMEOUT,
        )
        socket.opened()

    def _refused(self, url: str, why: str) -> None:
        log.error("Feed from %s stopped: %s", url, why)
        self.refusal = why
        self._report(FAILED, why)

    @staticmethod
    async def _authenticate(socket: FeedSocket, api_key: str) -> None:
        socket.send(json.dumps({"action": "authenticate", "api_key": api_key}))
        try:
            reply = orjson.loads(await socket.next_message())
        except orjson.JSONDecodeError:
            reply = None
        if not isinstance(reply, dict):
            raise AuthenticationFailed("the reply is not a JSON object")
        if reply.get("type") != "auth" or reply.get("status") != "success":
            raise AuthenticationFailed(reply.get("message") or reply)

    def _serve(self, socket: FeedSocket) -> None:
        """Ask for everything wanted, in its order; from then on requests go out as they are
        made."""
        self._serving = socket
        self._held = {}
        self._send(subscribe_requests(self._wanted.values()))

    def _receive(self, frame: bytes) -> None:
        if self._take(frame):
            return
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
        try:
            if kind == "subscribe":
                self._confirmed(message)
            elif kind == "unsubscribe" and message.get("failed"):
                log.warning(unsubscribe_failures(message["failed"]))
            self._deliver(message)
        except Exception:  # one bad message must not stop the feed
            log.exception("Could not use a %s message", kind)
