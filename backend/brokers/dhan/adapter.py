"""A client of one Dhan Live Market Feed connection: subscribes instruments, publishes their ticks.

The access token and client ID travel only in the upgrade request's query string
(``version=2&token=..&clientId=..&authType=2``); the URL is shown without it in every log line
and error.

Dhan acknowledges no request and has no ping, so a request is confirmed once its messages are
written to the socket (:meth:`BrokerSocket.send` waits while the socket cannot take more); Dhan
handles a connection's messages in order. The adapter never asks a connection for more than
Dhan's :data:`MAX_INSTRUMENTS`: past it it refuses the rest itself, as Kite's adapter does, and
the pool places them on another connection. An instrument moves to another mode by an
unsubscribe at its old mode and then a subscribe at the new one, right whether Dhan keeps one
subscription per instrument or one per instrument and mode.

Dhan refuses a connection after the upgrade, with a disconnect packet and then the close:

- 807, 808, 809 (the token expired or was refused): the connection does not dial again with the
  same credentials; it is ``session_expired`` with Dhan's reason until the session has new ones,
  as an upgrade refused for its session is elsewhere.
- 805 (the account opened a sixth connection, and Dhan closed its oldest): the connection is
  ``down`` for good and lets go of everything it held, marked as refused for capacity, so the
  pool treats it as full and places the symbols on its other connections. Dialling again would
  close the next oldest.
- 806 (the account has no Data APIs subscription): the connection is ``session_expired`` with
  what the trader must do, dials no more and refuses what it is asked for, until FeedPool starts
  again.

Dhan's verdict may arrive before the open returns; the open then raises it: the refused
session's, the connection limit's, or (806) none, the connection kept closed and refusing.

A previous-close packet (sent on each subscription) is kept per instrument and read by the
instrument's quote and full ticks: it is their ``close``. OI packets (sent with quote
subscriptions) and market-status packets carry nothing a tick has: the full packet carries the
open interest of a Depth tick.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from backend.brokers.adapter import BrokerAdapter, Refusal
from backend.brokers.dhan import protocol
from backend.brokers.errors import (
    BrokerConnectionError,
    BrokerError,
    ConnectionLimitError,
    SessionExpiredError,
)
from backend.feed import DOWN, SESSION_EXPIRED
from backend.instruments.master import Instrument
from backend.security.secret import Secret
from backend.wire.broker_socket import BrokerSocket

LABEL = "Dhan"
#: Instruments per connection, and connections per account, as Dhan documents them.
MAX_INSTRUMENTS = 5000
MAX_CONNECTIONS = 5


@dataclass(frozen=True)
class DhanCredentials:
    """What Dhan checks on the upgrade request: the client ID and the day's access token."""

    client_id: str
    access_token: Secret

    def url(self, root: str) -> str:
        query = urlencode(
            {
                "version": "2",
                "token": self.access_token.reveal(),
                "clientId": self.client_id,
                "authType": "2",
            }
        )
        return f"{root}?{query}"


class FeedRefused(BrokerError):
    """Dhan closed a connection for a reason that holds for the account's every connection
    (806: no Data APIs subscription); the text says what the trader must do."""


class _Withdrawn(BrokerError):
    """Dhan closed the connection being opened for good (:attr:`DhanAdapter.withdrawn`): the
    open ends here, whatever would retry it."""


class DhanAdapter(BrokerAdapter):
    """One pooled Dhan Live Market Feed connection."""

    broker = "dhan"

    def __init__(self, index: int, url: str, credentials: Any, **options) -> None:
        super().__init__(index, url, credentials, **options)
        #: The previous close of each instrument, by the packet bytes naming it.
        self._closes: dict[bytes, float] = {}
        #: The credentials of the socket open now, and those Dhan refused, with its reason.
        self._opened_with: Any = None
        self._refused: tuple[Any, SessionExpiredError] | None = None
        #: Why Dhan closed this connection for good (805, 806), once it did.
        self.withdrawn: ConnectionLimitError | FeedRefused | None = None

    @staticmethod
    def key(instrument: Instrument) -> tuple[int, int]:
        return protocol.EXCHANGE_SEGMENTS[instrument.exchange], int(instrument.token)

    @staticmethod
    def _route_key(key: tuple[int, int], mode: int) -> bytes:
        return protocol.route_key(*key, mode)  # a tick's route is found by its header

    @staticmethod
    def handshake(root: str, credentials: DhanCredentials) -> tuple[str, str, dict[str, str]]:
        return credentials.url(root), root, {}

    async def connect(self) -> None:
        """As :meth:`BrokerAdapter.connect`. A connection Dhan closed for the account as it
        opened (806) is kept, closed, refusing what it is asked for with Dhan's reason; one it
        closed for too many connections is refused, as at the upgrade elsewhere."""
        try:
            await super().connect()
        except _Withdrawn:
            if isinstance(self.withdrawn, ConnectionLimitError):
                raise self.withdrawn from None
            self._withdraw(self.withdrawn)

    async def _open_with(self, credentials: Any) -> BrokerSocket:
        """A connection, unless Dhan refused ``credentials`` already: then the refusal again,
        so that the session is renewed rather than refused once more. A connection Dhan closed
        as it opened raises the reason Dhan gave."""
        if self._refused is not None and self._refused[0] is credentials:
            raise self._refused[1]
        if self.withdrawn is not None:
            raise _Withdrawn(str(self.withdrawn))
        self._opened_with = credentials  # Dhan's verdict may arrive before the open returns
        try:
            return await super()._open_with(credentials)
        except BrokerConnectionError:
            if self.withdrawn is not None:
                raise _Withdrawn(str(self.withdrawn)) from None
            if self._refused is not None and self._refused[0] is credentials:
                raise self._refused[1] from None
            raise

    async def _reconnect(self, reason: str) -> None:
        """Dial again, unless Dhan closed the connection for good."""
        if self.withdrawn is None:
            with contextlib.suppress(_Withdrawn):
                await super()._reconnect(reason)
                return
        self._withdraw(self.withdrawn)

    async def hold(self, instruments: Sequence[Instrument], mode: int) -> list[Refusal]:
        """As :meth:`BrokerAdapter.hold`; all refused once Dhan closed the connection for good."""
        withdrawn = self.withdrawn
        if withdrawn is None or self._ws is not None:
            return await super().hold(instruments, mode)
        capacity = isinstance(withdrawn, ConnectionLimitError)
        return [Refusal(i, "", str(withdrawn), capacity) for i in instruments]

    async def close(self) -> None:
        """Ask Dhan to end the feed, as the official client does, then close."""
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(ConnectionError):
                await ws.send(protocol.disconnect_request())
        await super().close()

    # -- requests -----------------------------------------------------------------------------

    async def _subscribe(
        self,
        ws: BrokerSocket,
        instruments: Sequence[Instrument],
        mode: int,
        previous: dict[Hashable, int],
    ) -> list[Refusal]:
        within, refused = self._within_limit(instruments, previous, MAX_INSTRUMENTS, "Dhan")
        moved: dict[int, list[Instrument]] = {}
        for instrument in instruments:
            old_mode = previous.get(self.key(instrument))
            if old_mode is not None:
                moved.setdefault(old_mode, []).append(instrument)
        accepted = [i for i in instruments if self.key(i) in previous] + within
        with contextlib.suppress(ConnectionError):  # the reconnect subscribes everything held
            await self._unsubscribe(ws, moved)
            await self._send(ws, protocol.REQUEST_CODES[mode], accepted)
        return refused

    async def _unsubscribe(self, ws: BrokerSocket, by_mode: dict[int, list[Instrument]]) -> None:
        with contextlib.suppress(ConnectionError):  # a closed connection holds nothing
            for mode, instruments in by_mode.items():
                await self._send(ws, protocol.REQUEST_CODES[mode] + 1, instruments)

    async def _send(self, ws: BrokerSocket, code: int, instruments: Sequence[Instrument]) -> None:
        """Request ``code`` for ``instruments``, in messages of at most 100."""
        keys = [self.key(i) for i in instruments]
        step = protocol.MAX_REQUEST_INSTRUMENTS
        for start in range(0, len(keys), step):
            await ws.send(protocol.subscription_request(code, keys[start : start + step]))

    # -- incoming -----------------------------------------------------------------------------

    def _on_message(self, message: str | bytes) -> None:
        if isinstance(message, str):
            self.faults.report("unexpected text from the broker", "%.200s", message)
            return
        route = self._routes.get(protocol.packet_route(message))
        if route is not None and len(message) == message[1] | message[2] << 8:
            close = self._closes.get(protocol.instrument_of(message), 0.0)
            self._offer(route, (message, time.time_ns() // 1_000_000, close))
            return
        try:
            code = protocol.check(message)
        except protocol.ProtocolError as exc:
            self.ticks_dropped += 1
            self.faults.report("ignored a malformed packet", "%s", exc)
            return
        if code == protocol.PREV_CLOSE_CODE:
            self._closes[protocol.instrument_of(message)] = protocol.previous_close(message)
        elif code == protocol.DISCONNECT_CODE:
            self._disconnected(protocol.disconnect_reason(message))
        # A tick of an instrument no longer held, OI and market status: nothing to publish.

    def _normalise(self, raw: tuple[bytes, int, float], symbol: str, exchange: str) -> dict:
        packet, received_ms, close = raw
        return protocol.normalise(packet, symbol, exchange, received_ms, close)

    def _disconnected(self, reason: int) -> None:
        """Dhan is closing the connection for ``reason``: remember what it means for the next
        dial."""
        said = f"{LABEL} closed connection {self.index}: {protocol.reason_text(reason)}"
        self.log.warning("%s", said)
        if reason == protocol.TOO_MANY_CONNECTIONS:
            self.withdrawn = ConnectionLimitError(
                f"{said}; the account opened another connection elsewhere, and FeedPool keeps "
                "to the connections it has left"
            )
        elif reason == protocol.DATA_APIS_NOT_SUBSCRIBED:
            self.withdrawn = FeedRefused(
                f"{said}: subscribe to Dhan's Data APIs (web.dhan.co, My Profile, DhanHQ "
                "Trading APIs) and start FeedPool again"
            )
        elif reason in protocol.SESSION_REASONS:
            self._refused = (self._opened_with, SessionExpiredError(said))

    def _withdraw(self, why: ConnectionLimitError | FeedRefused) -> None:
        """Dhan closed the connection for good: say why; for too many connections, let go of
        everything held, refused for capacity, for the pool to place elsewhere."""
        self.log.error("Connection %d: %s; not dialling again", self.index, why)
        if isinstance(why, FeedRefused):
            self.set_state(SESSION_EXPIRED, str(why))
            return
        refusals = [
            Refusal(instrument, str(protocol.TOO_MANY_CONNECTIONS), str(why), capacity=True)
            for instrument, _ in self._held.values()
        ]
        for refusal in refusals:
            self._forget(refusal.instrument)
        self.set_state(DOWN, str(why))
        for listener in self.refusal_listeners:
            listener(self, refusals)
