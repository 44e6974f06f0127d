"""What every broker connection offers the pool, and the machinery they all share.

A :class:`BrokerAdapter` is one market-data WebSocket to a broker. It keeps the set of
instruments it holds (each at one mode), publishes their ticks on the bus, and reconnects on its
own with capped exponential backoff, subscribing everything it held again. A broker's package
subclasses it with that broker's wire protocol: how to open the connection, how to ask for and
drop instruments, and how to read what arrives.

A connection opens with its account's :class:`~backend.brokers.session.BrokerSession`. When the
broker refuses it for the session (Angel One's HTTP 401, Kite's 403) the connection goes to
``session_expired`` and dials no more until the session is renewed; then it opens again and
subscribes what it held. A connection that was ticking and falls silent for
``stale_feed_seconds`` while holding instruments is healed: it subscribes everything again, then
reconnects if the silence goes on.

The connection reads its broker through a :class:`~backend.wire.broker_socket.BrokerSocket`;
what the broker refuses or fails is raised as one of :mod:`backend.brokers.errors`.

An adapter built by the pool is built inside :func:`pooled_creation`, a thread-local context that
hands it the shared publisher; an adapter built alone opens a publisher of its own and closes it
with itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Coroutine, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from backend.brokers.errors import (
    BrokerConnectionError,
    BrokerError,
    ConnectionLimitError,
    SessionExpiredError,
)
from backend.brokers.session import BrokerSession, FixedSession
from backend.bus.messages import ConnectionHealth
from backend.bus.publisher import ZmqPublisher
from backend.feed import (
    CONNECTED,
    CONNECTING,
    DOWN,
    HEALTH_TOPIC,
    MODES,
    RECONNECTING,
    SESSION_EXPIRED,
    tick_topic,
)
from backend.instruments.master import Instrument
from backend.logs.faults import FaultLog
from backend.wire.broker_socket import (
    OPEN_TIMEOUT,
    BrokerSocket,
    Unreachable,
    UpgradeRefused,
    open_websocket,
)

#: Ticks in one read from a broker's socket past which the adapter is behind, and sheds: about
#: 70 ms of a connection's ticks at 15,000/s (3,000 symbols x 5/s). A shorter hiccup of the
#: machine, a read of a few hundred, is worked through: shedding at 256 cost the 45,000 ticks/s
#: headroom 583 ticks in a 10 s window of `make bench`.
BEHIND_TICKS = 1024
RECONNECT_FIRST_DELAY = 0.5
RECONNECT_MAX_DELAY = 30.0
HTTP_TOO_MANY_REQUESTS = 429
STALE_FEED_SECONDS = 30.0
#: A silence that healing did not end is given twice as long before the next heal, up to this.
MAX_SILENCE_STEPS = 5

_creation = threading.local()


@contextlib.contextmanager
def pooled_creation(publisher: ZmqPublisher) -> Iterator[None]:
    """Adapters built in this block, on this thread, publish on ``publisher``."""
    previous = getattr(_creation, "publisher", None)
    _creation.publisher = publisher
    try:
        yield
    finally:
        _creation.publisher = previous


def pooled_publisher() -> ZmqPublisher | None:
    """The publisher of the enclosing :func:`pooled_creation` block on this thread, if any."""
    return getattr(_creation, "publisher", None)


@dataclass(frozen=True, slots=True)
class Refusal:
    """An instrument the broker would not subscribe, and why."""

    instrument: Instrument
    code: str  # the broker's code, e.g. E1002; empty when the broker did not answer
    message: str
    #: Refused because the connection holds as many instruments as the broker allows.
    capacity: bool = False


#: The code of a refusal an adapter makes itself, past the broker's documented limit.
LIMIT_REFUSAL = "LIMIT"

#: A held instrument's routes are keyed ``(key, mode)``; the key is the broker's name for it.
Route = tuple[str, str, bytes]  # (symbol, exchange, topic)


class BrokerAdapter(ABC):
    """One pooled broker connection. Subclasses speak one broker's protocol.

    A subclass implements :meth:`key`, :meth:`handshake`, :meth:`_subscribe`, :meth:`_unsubscribe`,
    :meth:`_on_message` and :meth:`_normalise`; it may add a :meth:`_heartbeat`.

    Ticks are published once per read from the socket (:meth:`_offer`, :meth:`_flush`), every
    one of them while the adapter keeps up. A read of more than :data:`BEHIND_TICKS` ticks means
    it has fallen behind: of several ticks of one subscription in that read only the newest is
    normalised and published, and the others are counted in :attr:`ticks_shed`, so the adapter
    catches up instead of working through prices already stale.

    ``session`` is the account's :class:`~backend.brokers.session.BrokerSession`, or fixed
    credentials as the broker's package builds them; credentials travel only in :meth:`handshake`'s
    upgrade request. The lock serialises every request on the connection, so the broker sees them in
    the order they were made.
    """

    broker = "broker"
    #: The HTTP status with which the broker refuses an upgrade for an ended session.
    session_status = 401
    #: The broker account's name, with several accounts; shown on ``SYS.HEALTH``.
    account = ""

    def __init__(
        self,
        index: int,
        url: str,
        session: BrokerSession | Any,
        publisher: ZmqPublisher | None = None,
        *,
        reconnect_first_delay: float = RECONNECT_FIRST_DELAY,
        reconnect_max_delay: float = RECONNECT_MAX_DELAY,
        stale_feed_seconds: float = STALE_FEED_SECONDS,
    ) -> None:
        self.index = index
        self.url = url
        self.session = (
            session if isinstance(session, BrokerSession) else FixedSession(session, self.broker)
        )
        shared = publisher or pooled_publisher()
        self._owns_publisher = shared is None
        self.publisher = shared or ZmqPublisher(port=0)
        self.state = CONNECTING
        self.state_reason = ""
        self.ticks_received = 0
        #: Ticks not published because a newer one of the same subscription came in the same read.
        self.ticks_shed = 0
        #: Ticks not published because they could not be read or normalised (a malformed frame,
        #: a value no tick can carry), or could not be published.
        self.ticks_dropped = 0
        self._pending: list[tuple[Route, Any]] = []
        self.last_tick_at = 0.0  # time.monotonic() of the newest tick
        #: ``topic -> callback``: each called once, before the first tick on its topic is
        #: published (the pool shares one among its connections).
        self.first_tick_watch: dict[bytes, Any] = {}
        #: Heals of a silent feed: subscribing everything again, or reconnecting.
        self.feeds_healed = 0
        self._stale_seconds = stale_feed_seconds
        self._healed_at = 0.0
        self._heal_step = 0
        self.state_listeners: list[Any] = []
        #: Told ``(adapter, refusals)`` when a reconnect could not subscribe again everything held.
        self.refusal_listeners: list[Any] = []
        self.log = logging.LoggerAdapter(
            logging.getLogger(f"feedpool.{self.broker}"), {"connection": index}
        )
        #: Where the connection's repeated faults (malformed ticks, odd texts) are logged.
        self.faults = FaultLog(self.log, f"Connection {index}: ")
        self._reconnect_delays = (reconnect_first_delay, reconnect_max_delay)
        self._held: dict[Hashable, tuple[Instrument, int]] = {}
        #: ``(key, mode) -> (symbol, exchange, topic)`` for every mode subscribed.
        self._routes: dict[Hashable, Route] = {}
        self._ws: BrokerSocket | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._heartbeats: dict[BrokerSocket, asyncio.Task[None]] = {}
        self._closing = False

    # -- what a broker's adapter provides -------------------------------------------------------

    @staticmethod
    @abstractmethod
    def key(instrument: Instrument) -> Hashable:
        """The broker's name for an instrument on the wire, as its ticks carry it."""

    @staticmethod
    @abstractmethod
    def handshake(url: str, credentials: Any) -> tuple[str, str, dict[str, str]]:
        """How to open a connection: ``(URL to open, URL to show, request headers)``."""

    @classmethod
    async def open(
        cls, url: str, credentials: Any, what: str, socket: BrokerSocket | None = None
    ) -> BrokerSocket:
        """``socket`` (default: one that ignores what arrives) connected to the broker at ``url``
        as the account.

        :class:`ConnectionLimitError` when the broker refuses it for the account's connection
        limit (HTTP 429), :class:`SessionExpiredError` when it refuses the session
        (:attr:`session_status`), :class:`BrokerConnectionError` when it refuses it otherwise or
        cannot be reached. ``what`` names the connection in those errors, and the broker is named
        by the URL :meth:`handshake` gives to show, so a URL that carries credentials is never
        shown.
        """
        target, shown, headers = cls.handshake(url, credentials)
        try:
            return await open_websocket(target, socket or BrokerSocket(), headers)
        except UpgradeRefused as exc:
            error = {
                HTTP_TOO_MANY_REQUESTS: ConnectionLimitError,
                cls.session_status: SessionExpiredError,
            }.get(exc.status, BrokerConnectionError)
            raise error(f"the broker at {shown} refused {what}: {exc}") from None
        except Unreachable as exc:
            raise BrokerConnectionError(f"cannot reach the broker at {shown}: {exc}") from None

    @classmethod
    async def check(cls, url: str, credentials: Any) -> None:
        """Open one connection to the broker and close it again."""
        connection = await cls.open(url, credentials, "a test connection")
        await connection.close()

    async def _open(self) -> BrokerSocket:
        """A connection with the session's credentials, renewing them once if they are refused
        and the session can renew by itself."""
        credentials = self._credentials()
        try:
            return await self._open_with(credentials)
        except SessionExpiredError:
            if not self.session.can_renew:
                raise
            await self._renew_session(credentials, OPEN_TIMEOUT)
            return await self._open_with(self._credentials())

    async def _open_with(self, credentials: Any) -> BrokerSocket:
        """A connection opened with ``credentials``; :class:`BrokerConnectionError` also when
        the broker closed it before it could be used (its loss then went unheeded)."""
        socket = BrokerSocket(self._on_message, self._connection_lost, self._flush, self.faults)
        await self.open(self.url, credentials, f"connection {self.index}", socket)
        if socket.closed:
            raise BrokerConnectionError(
                f"the broker at {self.shown_url} closed connection {self.index} as it opened"
            )
        return socket

    def _credentials(self) -> Any:
        credentials = self.session.credentials
        if credentials is None:
            raise SessionExpiredError(self.session.problem or "no session with the broker yet")
        return credentials

    async def _renew_session(self, refused: Any, timeout: float | None = None) -> None:
        """Wait for the session to be renewed, ``session_expired`` meanwhile with the broker's
        refusal and, when a renewal fails, why."""
        refusal = self.state_reason

        def expired(problem: str) -> None:
            self.set_state(SESSION_EXPIRED, f"{refusal}; {problem}" if refusal else problem)

        self.session.problem_listeners.append(expired)
        try:
            await asyncio.wait_for(self.session.renewed(refused), timeout)
        except TimeoutError:
            raise SessionExpiredError(self.session.problem or "the session ended") from None
        finally:
            self.session.problem_listeners.remove(expired)

    def _within_limit(
        self,
        instruments: Sequence[Instrument],
        previous: dict[Hashable, int],
        limit: int,
        broker: str,
    ) -> tuple[list[Instrument], list[Refusal]]:
        """For a broker that drops what it cannot hold without a word: of ``instruments`` not
        held before, those within ``limit`` per connection, and the rest refused as the broker
        would, for capacity."""
        new = [i for i in instruments if self.key(i) not in previous]
        room = max(limit - (len(self._held) - len(new)), 0)
        message = f"{broker} allows {limit} instruments per connection"
        return new[:room], [Refusal(i, LIMIT_REFUSAL, message, capacity=True) for i in new[room:]]

    @abstractmethod
    async def _subscribe(
        self,
        ws: BrokerSocket,
        instruments: Sequence[Instrument],
        mode: int,
        previous: dict[Hashable, int],
    ) -> list[Refusal]:
        """Ask the broker for ``instruments`` at ``mode``; return those it refused.

        ``previous`` gives the mode each instrument was held in before, for those it moves.
        """

    @abstractmethod
    async def _unsubscribe(self, ws: BrokerSocket, by_mode: dict[int, list[Instrument]]) -> None:
        """Tell the broker to drop the instruments, each held at its mode."""

    @abstractmethod
    def _on_message(self, message: str | bytes) -> None:
        """Handle one message from the broker; :meth:`_offer` the ticks in it."""

    @abstractmethod
    def _normalise(self, raw: Any, symbol: str, exchange: str) -> dict[str, Any]:
        """The normalised tick of what :meth:`_offer` was given."""

    async def _heartbeat(self, ws: BrokerSocket) -> None:  # noqa: B027 - optional hook
        """Keep the connection alive, if the broker asks for more than protocol pings."""

    def _session_ended(self, ws: BrokerSocket, reason: str) -> None:  # noqa: B027 - optional hook
        """``ws`` closed: wake whatever waits for the broker's answer on it."""

    # -- state --------------------------------------------------------------------------------

    @property
    def held(self) -> dict[Hashable, tuple[Instrument, int]]:
        """``key -> (instrument, mode)`` for everything this connection holds."""
        return self._held

    def set_state(self, state: str, reason: str = "") -> None:
        """Record a state change, publish it on ``SYS.HEALTH`` and tell the listeners."""
        if state == self.state and reason == self.state_reason:
            return
        self.state, self.state_reason = state, reason
        self.publisher.publish(HEALTH_TOPIC, self.health())
        for listener in self.state_listeners:
            listener(self, state, reason)

    def health(self) -> ConnectionHealth:
        """This connection's ``SYS.HEALTH`` message, as of now."""
        return ConnectionHealth(
            connection=self.index,
            state=self.state,
            reason=self.state_reason,
            time=time.time(),
            account=self.account,
        )

    # -- connection ---------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the connection; :class:`BrokerConnectionError` if the broker is unreachable."""
        self._ws = await self._open()
        self._start_session(self._ws)
        if self._stale_seconds:
            self._spawn(self._watch_silence())
        self.log.info("Connection %d connected to %s", self.index, self.shown_url)
        self.set_state(CONNECTED)

    @property
    def shown_url(self) -> str:
        """The broker's URL as logs may show it."""
        return self.url

    def _start_session(self, ws: BrokerSocket) -> None:
        """Start ``ws``'s heartbeat, which ends with it (:meth:`_connection_lost`)."""
        self._heartbeats[ws] = self._spawn(self._heartbeat(ws))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _connection_lost(self, ws: BrokerSocket, reason: str) -> None:
        """``ws`` is closed: stop its heartbeat, wake what waits on it and, unless closing,
        reconnect."""
        heartbeat = self._heartbeats.pop(ws, None)
        if heartbeat is not None:
            heartbeat.cancel()
        self._session_ended(ws, reason)
        if not self._closing and self._ws is ws:
            self._ws = None
            self.log.warning("Connection %d: %s; reconnecting", self.index, reason)
            self._spawn(self._reconnect(reason))

    async def _reconnect(self, reason: str) -> None:
        self.set_state(RECONNECTING, reason)
        first, cap = self._reconnect_delays
        attempt = 0
        while True:
            await asyncio.sleep(min(cap, first * 2**attempt) * random.uniform(0.8, 1.2))
            attempt += 1
            credentials = self.session.credentials
            try:
                ws = await self._open_with(self._credentials())
            except SessionExpiredError as exc:
                self.set_state(SESSION_EXPIRED, str(exc))
                self.log.warning("Connection %d: %s; waiting for a new session", self.index, exc)
                await self._renew_session(credentials)
                attempt = 0
                continue
            except BrokerConnectionError as exc:
                self.set_state(RECONNECTING, str(exc))
                self.log.warning("Connection %d: %s; retrying", self.index, exc)
                continue
            self._ws = ws
            self._start_session(ws)
            self.set_state(CONNECTED)  # before subscribing: their ticks may precede the answer
            async with self._lock:
                refused = await self._subscribe_held(ws)
            self.log.info(
                "Connection %d reconnected; %d symbols subscribed again",
                self.index,
                len(self._held),
            )
            if refused:
                for listener in self.refusal_listeners:
                    listener(self, refused)
            return

    async def _watch_silence(self) -> None:
        """Heal a feed that was ticking and went silent while holding instruments.

        After ``stale_feed_seconds`` without a tick the connection subscribes everything again;
        after as long again it reconnects. A silence neither ends (a closed market, instruments
        that do not trade) is given twice as long before each next pair of heals.
        """
        stale = self._stale_seconds
        while True:
            await asyncio.sleep(min(stale / 4, 1.0))
            if self.state != CONNECTED or not self._held or not self.last_tick_at:
                continue
            if self.last_tick_at > self._healed_at:
                self._heal_step = 0
            quiet = time.monotonic() - max(self.last_tick_at, self._healed_at)
            if quiet < stale * 2 ** min(self._heal_step // 2, MAX_SILENCE_STEPS):
                continue
            self.feeds_healed += 1
            self._healed_at = time.monotonic()
            resubscribe = self._heal_step % 2 == 0
            self._heal_step += 1
            ws = self._ws
            if ws is None:
                continue
            if resubscribe:
                self.log.warning(
                    "Connection %d: no tick for %.0f s while holding %d symbols; "
                    "subscribing them again",
                    self.index,
                    quiet,
                    len(self._held),
                )
                async with self._lock:
                    await self._subscribe_held(ws)
            else:
                self.log.warning(
                    "Connection %d: still no tick %.0f s after subscribing again; reconnecting",
                    self.index,
                    quiet,
                )
                ws.abort()

    async def _subscribe_held(self, ws: BrokerSocket) -> list[Refusal]:
        """Subscribe everything held again on ``ws``; what the broker refused is forgotten.

        A broker that does not answer has the connection rebuilt, which subscribes it all again.
        """
        by_mode: dict[int, list[Instrument]] = {}
        for instrument, mode in self._held.values():
            by_mode.setdefault(mode, []).append(instrument)
        refused: list[Refusal] = []
        try:
            for mode, instruments in by_mode.items():
                refused += await self._subscribe(ws, instruments, mode, {})
        except BrokerError as exc:
            self.log.warning("Connection %d: %s", self.index, exc)
        for refusal in refused:
            self._forget(refusal.instrument)
        return refused

    async def close(self) -> None:
        """Close the connection and, if the adapter opened its own, its publisher."""
        self._closing = True
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.set_state(DOWN, "closed")
        if self._owns_publisher:
            self.publisher.close()

    # -- subscriptions ------------------------------------------------------------------------

    async def hold(self, instruments: Sequence[Instrument], mode: int) -> list[Refusal]:
        """Hold each instrument at ``mode`` (subscribing it, or moving it to ``mode``).

        Returns the instruments the broker refused; those are held as before afterwards.
        """
        key = self.key
        async with self._lock:
            previous = {key(i): self._held[key(i)][1] for i in instruments if key(i) in self._held}
            wanted = [i for i in instruments if previous.get(key(i)) != mode]
            for instrument in wanted:
                self._held[key(instrument)] = (instrument, mode)
                self._add_route(instrument, mode)
            ws = self._ws
            if ws is None or not wanted:
                return []  # a reconnect subscribes everything held
            try:
                refused = await self._subscribe(ws, wanted, mode, previous)
            except BrokerError as exc:  # not confirmed: held as before, and the error told
                refused = [Refusal(i, "", str(exc)) for i in wanted]
            refused_keys = {key(r.instrument) for r in refused}
            for instrument in wanted:
                k = key(instrument)
                old_mode = previous.get(k)
                if k in refused_keys:
                    self._routes.pop(self._route_key(k, mode), None)
                    if old_mode is None:
                        del self._held[k]
                    else:
                        self._held[k] = (instrument, old_mode)
                elif old_mode is not None:
                    self._routes.pop(self._route_key(k, old_mode), None)
            return refused

    async def release(self, instruments: Sequence[Instrument]) -> None:
        """Stop holding the instruments (unsubscribing them at the mode they are held in)."""
        async with self._lock:
            by_mode: dict[int, list[Instrument]] = {}
            for instrument in instruments:
                entry = self._held.get(self.key(instrument))
                if entry is not None:
                    by_mode.setdefault(entry[1], []).append(instrument)
                    self._forget(instrument)
            ws = self._ws
            if ws is not None and by_mode:
                await self._unsubscribe(ws, by_mode)

    def _add_route(self, instrument: Instrument, mode: int) -> None:
        topic = tick_topic(instrument.exchange, instrument.symbol, mode).encode()
        route = (instrument.symbol, instrument.exchange, topic)
        self._routes[self._route_key(self.key(instrument), mode)] = route

    @staticmethod
    def _route_key(key: Hashable, mode: int) -> Hashable:
        """What :attr:`_routes` files the route of ``key`` in ``mode`` under: ``(key, mode)``,
        unless a subclass finds its ticks' routes by something its frames carry."""
        return key, mode

    def _forget(self, instrument: Instrument) -> None:
        self._held.pop(self.key(instrument), None)
        self.mute(instrument)

    def mute(self, instrument: Instrument) -> None:
        """Publish no tick of ``instrument`` from now on, though it is still held."""
        key = self.key(instrument)
        for mode in MODES:
            self._routes.pop(self._route_key(key, mode), None)

    # -- incoming -----------------------------------------------------------------------------

    def _offer(self, route: Route, raw: Any) -> None:
        """A tick of ``route`` arrived, as ``raw`` (what :meth:`_normalise` reads)."""
        self._pending.append((route, raw))

    def _flush(self) -> None:
        """Publish the ticks of this read: all of them, or when behind the newest of each."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        self.ticks_received += len(pending)
        if len(pending) > BEHIND_TICKS:
            newest = {route[2]: (route, raw) for route, raw in pending}
            self.ticks_shed += len(pending) - len(newest)
            pending = list(newest.values())
        if self.first_tick_watch:
            watch = self.first_tick_watch
            for route, _ in pending:
                seen = watch.pop(route[2], None)
                if seen is not None:
                    seen()
        publish, normalise = self.publisher.publish_tick, self._normalise
        for (symbol, exchange, topic), raw in pending:
            try:  # free in Python 3.11 until something raises
                publish(topic, normalise(raw, symbol, exchange))
            except Exception as exc:  # one bad tick costs itself, not the read or the connection
                self.ticks_dropped += 1
                self.faults.report(
                    "dropped a tick it could not publish",
                    "%s: %s: %s",
                    topic.decode(),
                    type(exc).__name__,
                    exc,
                )
        self.last_tick_at = time.monotonic()
