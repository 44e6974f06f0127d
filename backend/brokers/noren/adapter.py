"""A client of one Noren OMS market-data WebSocket: subscribes scrips, merges their updates,
publishes their ticks.

Noren authenticates a socket by its first message, not by the upgrade: the adapter opens the
socket, sends the connect message (``c`` with the susertoken or ``a`` with the access token, as
the credentials say) and waits :data:`ACK_TIMEOUT` for the acknowledgement. An answer other than
``OK`` is :class:`SessionExpiredError` with Noren's words; no answer is
:class:`BrokerConnectionError`. The token travels only in that message, never in a log line or
an error.

Noren acknowledges a subscription with the scrip's snapshot (``tk``, ``dk``); a subscription
whose snapshot does not come within :data:`SNAPSHOT_TIMEOUT` is refused (:data:`NO_DATA`), not
reported subscribed, and unsubscribed again: Shoonya is reported to accept subscriptions past
about 100 active ones and send nothing for them. Each subscription's last full state is kept and
every update merged into it, so every tick is complete.

FeedPool's LTP and Quote read the touchline (``t``), Depth the depth (``d``). Chosen for a mode
change: between LTP and Quote nothing is sent (the touchline serves both); between the touchline
and the depth the new feed is subscribed, its snapshot awaited, and only then the old feed
unsubscribed, so a refused move leaves the old subscription streaming.

The heartbeat is the official clients': a WebSocket ping carrying ``{"t":"h"}`` every
:data:`HEARTBEAT_SECONDS`, besides the socket's own keepalive.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from backend.brokers.adapter import BrokerAdapter, Refusal
from backend.brokers.errors import BrokerConnectionError, SessionExpiredError
from backend.brokers.noren import protocol
from backend.instruments.master import Instrument
from backend.security.secret import Secret
from backend.wire.broker_socket import BrokerSocket

#: One WebSocket per session: Noren does not support more.
MAX_CONNECTIONS = 1
ACK_TIMEOUT = 10.0
SNAPSHOT_TIMEOUT = 5.0
HEARTBEAT_SECONDS = 3.0
#: The payload of the official clients' pings.
PING_PAYLOAD = b'{"t":"h"}'
NO_DATA = "NO_DATA"
NO_DATA_MESSAGE = (
    f"the broker accepted the subscription but sent no data within {SNAPSHOT_TIMEOUT:g} s "
    "(Shoonya is reported to stop sending past about 100 active subscriptions)"
)
#: Messages that need nothing done: unsubscribes' and text heartbeats' acknowledgements.
QUIET = frozenset({*protocol.UNSUBSCRIBED.values(), protocol.HEARTBEAT_ACK})
ACKS = frozenset(protocol.CONNECT_ACKS.values())
#: The longest piece of Noren's refusal an error quotes.
SHOWN_REFUSAL = 200


@dataclass(frozen=True, slots=True)
class NorenCredentials:
    """What the connect message carries: the user ID, the token, and which connect opens the
    socket (``c``: the legacy susertoken; ``a``: the OAuth generation's access token)."""

    user_id: str
    token: Secret
    connect: str


class ConnectAck:
    """The acknowledgement of one socket's connect message."""

    def __init__(self) -> None:
        self._answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    def settle(self, message: dict[str, Any]) -> None:
        if not self._answer.done():
            self._answer.set_result(message)

    def read(self, text: str | bytes) -> None:
        """Settle with ``text`` if it is an acknowledgement; anything else is ignored."""
        if isinstance(text, str):
            message = protocol.parse(text)
            if message["t"] in ACKS:
                self.settle(message)

    def lost(self, reason: str) -> None:
        if not self._answer.done():
            self._answer.set_exception(ConnectionError(reason))

    async def authenticate(
        self, ws: BrokerSocket, credentials: NorenCredentials, shown: str, what: str
    ) -> None:
        """Send the connect message on ``ws`` and wait for its acknowledgement: ``OK``, or
        :class:`SessionExpiredError` with Noren's words; :class:`BrokerConnectionError` when
        none comes within :data:`ACK_TIMEOUT` or the socket closes first."""
        message = protocol.connect_message(
            credentials.connect, credentials.user_id, credentials.token.reveal()
        )
        try:
            await ws.send(message)
            answer = await asyncio.wait_for(self._answer, ACK_TIMEOUT)
        except TimeoutError:
            raise BrokerConnectionError(
                f"the broker at {shown} did not acknowledge the connect message of {what} "
                f"within {ACK_TIMEOUT:g} s"
            ) from None
        except ConnectionError as exc:
            raise BrokerConnectionError(
                f"the broker at {shown} closed {what} before acknowledging it: {exc}"
            ) from None
        if answer.get("s") != protocol.OK:
            said = answer.get("emsg") or answer.get("s")
            raise SessionExpiredError(
                f"the broker at {shown} refused the session of {what}: {str(said)[:SHOWN_REFUSAL]}"
            )


class NorenAdapter(BrokerAdapter):
    """One pooled Noren market-data connection."""

    broker = "noren"

    def __init__(self, index: int, url: str, credentials: Any, **options) -> None:
        super().__init__(index, url, credentials, **options)
        #: The acknowledgement awaited on the socket being opened.
        self._ack: ConnectAck | None = None
        #: Each subscription's last full state, by ``(feed, scrip key)``.
        self._states: dict[tuple[str, str], dict[str, Any]] = {}
        #: The snapshots a subscribe waits for, and the event set once none is left.
        self._awaited: set[tuple[str, str]] = set()
        self._arrived = asyncio.Event()

    @staticmethod
    def key(instrument: Instrument) -> str:
        return protocol.key(instrument.exchange, instrument.token)

    @staticmethod
    def handshake(url: str, credentials: NorenCredentials) -> tuple[str, str, dict[str, str]]:
        return url, url, {}

    @classmethod
    async def check(cls, url: str, credentials: NorenCredentials) -> None:
        """Open one connection, have its connect message acknowledged, and close it."""
        ack = ConnectAck()
        socket = BrokerSocket(ack.read, lambda _, reason: ack.lost(reason))
        what = "a test connection"
        ws = await cls.open(url, credentials, what, socket)
        try:
            await ack.authenticate(ws, credentials, url, what)
        finally:
            await ws.close()

    async def _open_with(self, credentials: Any) -> BrokerSocket:
        """A connection whose connect message Noren acknowledged; closed again if it did not."""
        self._ack = ConnectAck()
        try:
            ws = await super()._open_with(credentials)
            try:
                await self._ack.authenticate(
                    ws, credentials, self.shown_url, f"connection {self.index}"
                )
            except BaseException:
                await ws.close()
                raise
        finally:
            self._ack = None
        self._states.clear()  # a new socket's subscriptions begin with their snapshots
        return ws

    async def _heartbeat(self, ws: BrokerSocket) -> None:
        """A ping carrying ``{"t":"h"}`` every :data:`HEARTBEAT_SECONDS`, as the official
        clients send; the connection's end cancels it."""
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            if ws.closed or ws.transport is None:
                return
            ws.transport.send_ping(PING_PAYLOAD)

    def _session_ended(self, ws: BrokerSocket, reason: str) -> None:
        if self._ack is not None:
            self._ack.lost(reason)
        self._arrived.set()  # a subscribe waiting for snapshots finds the socket closed

    # -- requests -----------------------------------------------------------------------------

    async def _subscribe(
        self,
        ws: BrokerSocket,
        instruments: Sequence[Instrument],
        mode: int,
        previous: dict[Hashable, int],
    ) -> list[Refusal]:
        feed = protocol.MODE_FEEDS[mode]
        key = self.key
        asked = [i for i in instruments if protocol.MODE_FEEDS.get(previous.get(key(i))) != feed]
        refused = await self._ask(ws, feed, asked)
        refused_keys = {key(r.instrument) for r in refused}
        moved: dict[int, list[Instrument]] = {}
        for instrument in asked:
            old_mode = previous.get(key(instrument))
            if old_mode is not None and key(instrument) not in refused_keys:
                moved.setdefault(old_mode, []).append(instrument)
        await self._unsubscribe(ws, moved)
        return refused

    async def _ask(
        self, ws: BrokerSocket, feed: str, instruments: Sequence[Instrument]
    ) -> list[Refusal]:
        """Subscribe ``instruments`` to ``feed`` and wait for their snapshots; those that send
        none within :data:`SNAPSHOT_TIMEOUT` are unsubscribed and refused (:data:`NO_DATA`)."""
        if not instruments:
            return []
        keys = [self.key(i) for i in instruments]
        for scrip in keys:
            self._states.pop((feed, scrip), None)  # its snapshot starts it afresh
        self._awaited = {(feed, scrip) for scrip in keys}
        self._arrived.clear()
        try:
            await self._send(ws, feed, keys)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), SNAPSHOT_TIMEOUT)
        except ConnectionError:
            return []  # the reconnect subscribes everything held again
        finally:
            missing, self._awaited = self._awaited, set()
        if ws.closed:
            return []
        silent = [i for i, scrip in zip(instruments, keys, strict=True) if (feed, scrip) in missing]
        if silent:
            self.log.warning(
                "Connection %d: no data for %d of %d subscriptions within %g s; unsubscribed them",
                self.index,
                len(silent),
                len(instruments),
                SNAPSHOT_TIMEOUT,
            )
            with contextlib.suppress(ConnectionError):
                await self._send(ws, protocol.UNSUBSCRIBE[feed], [self.key(i) for i in silent])
        return [Refusal(i, NO_DATA, NO_DATA_MESSAGE) for i in silent]

    async def _unsubscribe(self, ws: BrokerSocket, by_mode: dict[int, list[Instrument]]) -> None:
        by_feed: dict[str, list[str]] = {}
        for mode, instruments in by_mode.items():
            by_feed.setdefault(protocol.MODE_FEEDS[mode], []).extend(map(self.key, instruments))
        with contextlib.suppress(ConnectionError):  # a closed connection holds nothing
            for feed, keys in by_feed.items():
                for scrip in keys:
                    self._states.pop((feed, scrip), None)
                await self._send(ws, protocol.UNSUBSCRIBE[feed], keys)

    async def _send(self, ws: BrokerSocket, kind: str, keys: Iterable[str]) -> None:
        """Message ``kind`` for ``keys``, at most :data:`protocol.MAX_REQUEST_KEYS` a message."""
        listed = list(keys)
        step = protocol.MAX_REQUEST_KEYS
        for start in range(0, len(listed), step):
            await ws.send(protocol.feed_message(kind, listed[start : start + step]))

    # -- incoming -----------------------------------------------------------------------------

    def _on_message(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            self.faults.report(
                "unexpected binary message from the broker", "%d bytes", len(message)
            )
            return
        try:
            parsed = protocol.parse(message)
            kind = parsed["t"]
            feed = protocol.FEED_OF.get(kind)
            if feed is not None:
                self._on_tick(feed, kind, parsed)
                return
        except protocol.ProtocolError as exc:
            self.ticks_dropped += 1
            self.faults.report("ignored a malformed message", "%s", exc)
            return
        if kind in ACKS and self._ack is not None:
            self._ack.settle(parsed)
        elif kind not in QUIET:
            self.faults.report("unexpected message from the broker", "%.200s", message)

    def _on_tick(self, feed: str, kind: str, message: dict[str, Any]) -> None:
        """Keep a snapshot, or merge an update into the state it changes; offer the tick of a
        subscription held on that feed."""
        scrip = protocol.tick_key(message)
        held = (feed, scrip)
        if kind == protocol.SNAPSHOTS[feed]:
            state = message
            if held in self._awaited:
                self._awaited.discard(held)
                if not self._awaited:
                    self._arrived.set()
        else:
            previous = self._states.get(held)
            if previous is None:
                self.faults.report("ignored an update without its snapshot", "%s", scrip)
                return
            state = protocol.merge(previous, message)
        self._states[held] = state
        entry = self._held.get(scrip)
        if entry is None or protocol.MODE_FEEDS[entry[1]] != feed:
            return
        route = self._routes.get((scrip, entry[1]))
        if route is not None:
            self._offer(route, (state, entry[1], time.time_ns() // 1_000_000))

    def _normalise(self, raw: tuple[dict[str, Any], int, int], symbol: str, exchange: str) -> dict:
        state, mode, received_ms = raw
        return protocol.normalise(state, mode, symbol, exchange, received_ms)
