"""A client of one SmartStream connection: subscribes tokens, publishes their ticks, reconnects.

The broker acknowledges nothing it accepts; it only answers a refusal (E1001, E1002) with a text
frame naming the request's ``correlationID``, by which the adapter matches it to its request. The
broker handles a connection's messages in order, so after its requests the adapter sends a text
``ping`` and waits for the ``pong``: once it is back, every refusal of those requests has arrived.
That makes :meth:`SmartStreamAdapter.hold` report exactly which instruments the broker refused.
A ``pong`` names no ``ping``; each socket counts the pings it has sent and the pongs it has
received (:class:`PingCount`), and a request waits for the pong numbered as its ping. A socket's
count ends with it, so nothing sent on a connection that dropped is waited for on the next. A
request whose pong does not come within :data:`ANSWER_TIMEOUT` is not confirmed: it fails, and the
connection, whose broker no longer answers in turn, is rebuilt.

Credentials travel only in the upgrade request's headers; they never reach a log line, an error
text or the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import count
from typing import Any

from backend.brokers.adapter import BrokerAdapter, Refusal
from backend.brokers.angel import protocol
from backend.brokers.errors import BrokerError
from backend.instruments.master import Instrument
from backend.security.secret import Secret
from backend.wire.broker_socket import BrokerSocket

#: Tokens per subscribe request. The broker refuses a request that would pass its limit whole, so
#: smaller requests waste less of a connection's room when one is refused.
REQUEST_TOKENS = 100
HEARTBEAT_SECONDS = 10.0
ANSWER_TIMEOUT = 15.0

Key = tuple[int, str]  # (exchange type, token)


def bearer(token: str) -> str:
    """A session token as an ``Authorization`` header carries it: prefixed ``Bearer ``."""
    return token if token.startswith("Bearer ") else f"Bearer {token}"


@dataclass(frozen=True)
class SmartStreamCredentials:
    """What the broker checks on the upgrade request."""

    client_code: str
    api_key: Secret
    feed_token: Secret
    auth_token: Secret

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": bearer(self.auth_token.reveal()),
            "x-api-key": self.api_key.reveal(),
            "x-client-code": self.client_code,
            "x-feed-token": self.feed_token.reveal(),
        }


class PingCount:
    """The text pings sent on one socket and the pongs received, and who waits for which."""

    __slots__ = ("_ended", "_waiters", "answered", "sent")

    def __init__(self) -> None:
        self.sent = 0
        self.answered = 0
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._ended = ""

    async def answer(self, number: int) -> None:
        """Return once pong ``number`` is in; :class:`ConnectionError` if the socket ends."""
        if self._ended:
            raise ConnectionError(self._ended)
        if self.answered >= number:
            return
        waiter = self._waiters[number] = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiters.pop(number, None)

    def wake(self) -> None:
        waiter = self._waiters.get(self.answered)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def end(self, reason: str) -> None:
        self._ended = reason or "the connection is closed"
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError(self._ended))


class SmartStreamAdapter(BrokerAdapter):
    """One pooled SmartStream 2.0 connection."""

    broker = "angel"

    def __init__(
        self, index: int, url: str, credentials: SmartStreamCredentials, **options
    ) -> None:
        super().__init__(index, url, credentials, **options)
        self._pings: dict[BrokerSocket | None, PingCount] = {}
        #: The broker's refusal of each request under way, by correlation ID; ``None`` if none.
        self._refusals: dict[str, tuple[str, str] | None] = {}
        self._correlation = count(1)

    @staticmethod
    def key(instrument: Instrument) -> Key:
        return protocol.EXCHANGE_TYPES[instrument.exchange], instrument.token

    @staticmethod
    def _route_key(key: Key, mode: int) -> bytes:
        return protocol.route_key(key, mode)  # a tick's route is found by its first bytes

    @staticmethod
    def handshake(url: str, credentials: SmartStreamCredentials) -> tuple[str, str, dict[str, str]]:
        return url, url, credentials.headers()

    async def _heartbeat(self, ws: BrokerSocket) -> None:
        """The broker's text ``ping`` every :data:`HEARTBEAT_SECONDS`; a broker that has not
        answered one by the next has stopped answering, and the connection is rebuilt."""
        count = self._pings.setdefault(ws, PingCount())
        last = 0  # the number of the heartbeat's last ping
        with contextlib.suppress(ConnectionError):
            while True:
                await asyncio.sleep(HEARTBEAT_SECONDS)
                if count.answered < last:
                    self.log.warning(
                        "Connection %d: no pong for %.0f s; reconnecting",
                        self.index,
                        HEARTBEAT_SECONDS,
                    )
                    ws.abort()
                    return
                last = await self._ping(ws)

    async def _ping(self, ws: BrokerSocket) -> int:
        """Send a ``ping`` on ``ws``; its number among the socket's pings."""
        await ws.send("ping")  # after this, nothing runs before the count is raised
        count = self._pings.setdefault(ws, PingCount())
        count.sent += 1
        return count.sent

    def _session_ended(self, ws: BrokerSocket, reason: str) -> None:
        count = self._pings.pop(ws, None)
        if count is not None:
            count.end(reason)

    # -- requests -----------------------------------------------------------------------------

    async def _subscribe(
        self,
        ws: BrokerSocket,
        instruments: Sequence[Instrument],
        mode: int,
        previous: dict[Hashable, int],
    ) -> list[Refusal]:
        refused = await self._request(ws, protocol.SUBSCRIBE, mode, instruments)
        refused = await self._fill_up(ws, mode, refused)
        refused_keys = {self.key(r.instrument) for r in refused}
        moved: dict[int, list[Instrument]] = {}
        for instrument in instruments:
            old_mode = previous.get(self.key(instrument))
            if old_mode is not None and self.key(instrument) not in refused_keys:
                moved.setdefault(old_mode, []).append(instrument)
        await self._unsubscribe(ws, moved)
        return refused

    async def _unsubscribe(self, ws: BrokerSocket, by_mode: dict[int, list[Instrument]]) -> None:
        for mode, instruments in by_mode.items():
            await self._request(ws, protocol.UNSUBSCRIBE, mode, instruments)

    async def _fill_up(self, ws: BrokerSocket, mode: int, refused: list[Refusal]) -> list[Refusal]:
        """Subscribe as many capacity-refused instruments as still fit; return what does not.

        The broker refuses a request that would pass its limit whole, so the room left may be
        smaller than a request yet larger than zero. Halving the refused list finds it: when a
        half is taken whole the other half is tried next; when any of it is refused, the other
        half cannot fit either and the search goes on among the refused part.
        """
        final = [r for r in refused if not r.capacity]
        pending = [r for r in refused if r.capacity]
        while len(pending) > 1:
            half, rest = pending[: len(pending) // 2], pending[len(pending) // 2 :]
            again = await self._request(ws, protocol.SUBSCRIBE, mode, [r.instrument for r in half])
            if again:
                final += rest
                pending = again
            else:
                pending = rest
        return final + pending

    async def _request(
        self, ws: BrokerSocket, action: int, mode: int, instruments: Iterable[Instrument]
    ) -> list[Refusal]:
        """Send ``action`` for the instruments in batches, then wait until the broker is done."""
        batches: dict[str, list[Instrument]] = {}
        by_type: dict[int, list[Instrument]] = {}
        for instrument in instruments:
            by_type.setdefault(self.key(instrument)[0], []).append(instrument)
        try:
            for exchange_type, group in by_type.items():
                for start in range(0, len(group), REQUEST_TOKENS):
                    batch = group[start : start + REQUEST_TOKENS]
                    correlation_id = f"fp{next(self._correlation) % 10**8}"
                    batches[correlation_id] = batch
                    self._refusals[correlation_id] = None
                    tokens = {exchange_type: [i.token for i in batch]}
                    await ws.send(protocol.request(action, mode, tokens, correlation_id))
            await self._barrier(ws)
        except ConnectionError:
            return []  # the reconnect subscribes everything held again
        except TimeoutError:
            ws.abort()
            raise BrokerError(
                f"connection {self.index}: the broker did not confirm the request within "
                f"{ANSWER_TIMEOUT:g} s; reconnecting"
            ) from None
        finally:
            answers = {c: self._refusals.pop(c, None) for c in batches}
        refused = []
        for correlation_id, batch in batches.items():
            answer = answers[correlation_id]
            if answer is not None and action == protocol.SUBSCRIBE:
                code, message = answer
                capacity = code == protocol.ERROR_SUBSCRIPTION_LIMIT[0]
                refused += [Refusal(i, code, message, capacity) for i in batch]
        return refused

    async def _barrier(self, ws: BrokerSocket) -> None:
        """Wait until the broker has handled everything sent on ``ws`` before this call."""
        number = await self._ping(ws)
        await asyncio.wait_for(self._pings[ws].answer(number), ANSWER_TIMEOUT)

    # -- incoming -----------------------------------------------------------------------------

    def _on_message(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            self._on_tick(message)
        elif message == "pong":
            self._on_pong()
        else:
            self._on_text(message)

    def _on_tick(self, frame: bytes) -> None:
        try:
            route = self._routes.get(protocol.frame_route(frame))
        except protocol.ProtocolError as exc:
            self.ticks_dropped += 1
            self.faults.report("ignored a malformed tick", "%s", exc)
            return
        if route is not None:
            self._offer(route, frame)

    def _normalise(self, raw: bytes, symbol: str, exchange: str) -> dict[str, Any]:
        return protocol.normalise(raw, symbol, exchange)

    def _on_pong(self) -> None:
        count = self._pings.get(self._ws)
        if count is not None:
            count.answered += 1
            count.wake()

    def _on_text(self, text: str) -> None:
        try:
            message = json.loads(text)
            code, reason = message["errorCode"], message.get("errorMessage", "")
            correlation_id = message.get("correlationID") or ""
        except (ValueError, RecursionError, TypeError, KeyError):  # not JSON, or no refusal
            self.faults.report("unexpected text from the broker", "%.200s", text)
            return
        self.faults.report("broker refused a request", "%.50s %.200s", code, reason)
        if isinstance(correlation_id, str) and correlation_id in self._refusals:
            self._refusals[correlation_id] = (code, reason)
