"""A client of one SmartStream connection: subscribes tokens, publishes their ticks, reconnects.

The broker acknowledges nothing it accepts; it only answers a refusal (E1001, E1002) with a text
frame naming the request's ``correlationID``. The broker handles a connection's messages in order,
so after its requests the adapter sends a text ``ping`` and waits for the ``pong``: once it is
back, every refusal of those requests has arrived. That makes :meth:`SmartStreamAdapter.hold`
report exactly which instruments the broker refused.

When the connection drops, the adapter reconnects with capped exponential backoff and subscribes
everything it held again. Credentials travel only in the upgrade request's headers; they never
reach a log line, an error text or the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import count

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from backend.adapter import (
    CONNECTED,
    DOWN,
    RECONNECTING,
    BrokerAdapter,
    BrokerConnectionError,
    ConnectionLimitError,
    Refusal,
)
from backend.bus import ZmqPublisher, tick_topic
from backend.instruments import Instrument
from backend.settings import Secret
from backend.smartstream import protocol
from backend.wire_log import MaskedHeadersLogger

#: Tokens per subscribe request. The broker refuses a request that would pass its limit whole, so
#: smaller requests waste less of a connection's room when one is refused.
REQUEST_TOKENS = 100
HEARTBEAT_SECONDS = 10.0
ANSWER_TIMEOUT = 15.0
OPEN_TIMEOUT = 10.0
RECONNECT_FIRST_DELAY = 0.5
RECONNECT_MAX_DELAY = 30.0

Key = tuple[int, str]  # (exchange type, token)


@dataclass(frozen=True)
class SmartStreamCredentials:
    """What the broker checks on the upgrade request."""

    client_code: str
    api_key: Secret
    feed_token: Secret
    auth_token: Secret

    def headers(self) -> dict[str, str]:
        auth = self.auth_token.reveal()
        return {
            "Authorization": auth if auth.startswith("Bearer ") else f"Bearer {auth}",
            "x-api-key": self.api_key.reveal(),
            "x-client-code": self.client_code,
            "x-feed-token": self.feed_token.reveal(),
        }


async def open_connection(
    url: str, credentials: SmartStreamCredentials, what: str = "the connection"
) -> ClientConnection:
    """A SmartStream connection to ``url``, authenticated by ``credentials``.

    :class:`ConnectionLimitError` when the broker refuses it for the account's connection limit
    (HTTP 429), :class:`BrokerConnectionError` when it refuses it otherwise or cannot be reached.
    ``what`` names the connection in those errors.
    """
    try:
        return await connect(
            url,
            additional_headers=credentials.headers(),
            open_timeout=OPEN_TIMEOUT,
            ping_interval=20,
            ping_timeout=20,
            max_size=2**20,
            logger=MaskedHeadersLogger(logging.getLogger("websockets.client")),
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        reason = exc.response.headers.get("x-error-message", "") or exc.response.reason_phrase
        error = ConnectionLimitError if status == 429 else BrokerConnectionError
        raise error(f"the broker at {url} refused {what}: HTTP {status} {reason}") from None
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        raise BrokerConnectionError(
            f"cannot reach the broker at {url}: {exc or type(exc).__name__}"
        ) from None


class SmartStreamAdapter(BrokerAdapter):
    """One pooled SmartStream 2.0 connection."""

    broker = "smartstream"

    def __init__(
        self,
        index: int,
        url: str,
        credentials: SmartStreamCredentials,
        publisher: ZmqPublisher | None = None,
        *,
        reconnect_first_delay: float = RECONNECT_FIRST_DELAY,
        reconnect_max_delay: float = RECONNECT_MAX_DELAY,
    ) -> None:
        super().__init__(index, publisher)
        self.url = url
        self._credentials = credentials
        self._reconnect_delays = (reconnect_first_delay, reconnect_max_delay)
        self._held: dict[Key, tuple[Instrument, int]] = {}
        # (exchange type, token, mode) -> (symbol, exchange, topic), for every mode subscribed.
        self._routes: dict[tuple[int, str, int], tuple[str, str, str]] = {}
        self._ws: ClientConnection | None = None
        self._lock = asyncio.Lock()
        self._pongs: deque[asyncio.Future[None] | None] = deque()
        self._refusals: dict[str, tuple[str, str]] = {}
        self._correlation = count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    @property
    def held(self) -> dict[Key, tuple[Instrument, int]]:
        return self._held

    # -- connection ---------------------------------------------------------------------------

    async def connect(self) -> None:
        self._ws = await self._open()
        self._start_session(self._ws)
        self.log.info("Connection %d connected to %s", self.index, self.url)
        self.set_state(CONNECTED)

    async def _open(self) -> ClientConnection:
        return await open_connection(self.url, self._credentials, f"connection {self.index}")

    def _start_session(self, ws: ClientConnection) -> None:
        self._spawn(self._read(ws))
        self._spawn(self._heartbeat(ws))

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _heartbeat(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(HEARTBEAT_SECONDS)
                self._pongs.append(None)
                await ws.send("ping")

    async def _read(self, ws: ClientConnection) -> None:
        closed_by = "connection closed"
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    self._on_tick(message)
                elif message == "pong":
                    self._on_pong()
                else:
                    self._on_text(message)
        except ConnectionClosed as exc:
            closed_by = f"connection lost ({exc})"
        finally:
            while self._pongs:
                waiter = self._pongs.popleft()
                if waiter is not None and not waiter.done():
                    waiter.set_exception(ConnectionError(closed_by))
        if not self._closing and self._ws is ws:
            self._ws = None
            self.log.warning("Connection %d: %s; reconnecting", self.index, closed_by)
            self._spawn(self._reconnect(closed_by))

    async def _reconnect(self, reason: str) -> None:
        self.set_state(RECONNECTING, reason)
        first, cap = self._reconnect_delays
        for attempt in count():
            delay = min(cap, first * 2**attempt) * random.uniform(0.8, 1.2)
            await asyncio.sleep(delay)
            try:
                ws = await self._open()
            except BrokerConnectionError as exc:
                self.set_state(RECONNECTING, str(exc))
                self.log.warning("Connection %d: %s; retrying", self.index, exc)
                continue
            self._ws = ws
            self._start_session(ws)
            async with self._lock:
                refused = await self._subscribe_held(ws)
            self.log.info(
                "Connection %d reconnected; %d symbols subscribed again",
                self.index,
                len(self._held),
            )
            self.set_state(CONNECTED)
            if refused:
                for listener in self.refusal_listeners:
                    listener(self, refused)
            return

    async def _subscribe_held(self, ws: ClientConnection) -> list[Refusal]:
        by_mode: dict[int, list[Instrument]] = {}
        for instrument, mode in self._held.values():
            by_mode.setdefault(mode, []).append(instrument)
        refused: list[Refusal] = []
        for mode, instruments in by_mode.items():
            refusals = await self._request(ws, protocol.SUBSCRIBE, mode, instruments)
            refused += await self._fill_up(ws, mode, refusals)
        for refusal in refused:
            self._forget(refusal.instrument)
        return refused

    async def close(self) -> None:
        self._closing = True
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.set_state(DOWN, "closed")
        await super().close()

    # -- subscriptions ------------------------------------------------------------------------

    async def hold(self, instruments: Sequence[Instrument], mode: int) -> list[Refusal]:
        async with self._lock:
            previous = {
                self._key(i): self._held[self._key(i)][1]
                for i in instruments
                if self._key(i) in self._held
            }
            wanted = [i for i in instruments if previous.get(self._key(i)) != mode]
            for instrument in wanted:
                self._held[self._key(instrument)] = (instrument, mode)
                self._add_route(instrument, mode)
            ws = self._ws
            if ws is None or not wanted:
                return []  # a reconnect subscribes everything held
            refused = await self._request(ws, protocol.SUBSCRIBE, mode, wanted)
            refused = await self._fill_up(ws, mode, refused)
            refused_keys = {self._key(r.instrument) for r in refused}
            moved: dict[int, list[Instrument]] = {}
            for instrument in wanted:
                key = self._key(instrument)
                old_mode = previous.get(key)
                if key in refused_keys:
                    self._routes.pop((*key, mode), None)
                    if old_mode is None:
                        del self._held[key]
                    else:
                        self._held[key] = (instrument, old_mode)
                elif old_mode is not None:
                    moved.setdefault(old_mode, []).append(instrument)
            for old_mode, instruments_moved in moved.items():
                await self._request(ws, protocol.UNSUBSCRIBE, old_mode, instruments_moved)
                for instrument in instruments_moved:
                    self._routes.pop((*self._key(instrument), old_mode), None)
            return refused

    async def _fill_up(
        self, ws: ClientConnection, mode: int, refused: list[Refusal]
    ) -> list[Refusal]:
        """Subscribe as many capacity-refused instruments as still fit; return what does not.

        The broker refuses a request that would pass its limit whole, so the room left may be
        smaller than a request yet larger than zero. Halving the refused list finds it: when a
        half is taken whole the other half is tried next; when any of it is refused, the other
        half cannot fit either and the search goes on among the refused part.
        """
        final = [r for r in refused if not r.is_capacity]
        pending = [r for r in refused if r.is_capacity]
        while len(pending) > 1:
            half, rest = pending[: len(pending) // 2], pending[len(pending) // 2 :]
            again = await self._request(ws, protocol.SUBSCRIBE, mode, [r.instrument for r in half])
            if again:
                final += rest
                pending = again
            else:
                pending = rest
        return final + pending

    async def release(self, instruments: Sequence[Instrument]) -> None:
        async with self._lock:
            by_mode: dict[int, list[Instrument]] = {}
            for instrument in instruments:
                entry = self._held.get(self._key(instrument))
                if entry is not None:
                    by_mode.setdefault(entry[1], []).append(instrument)
                    self._forget(instrument)
            ws = self._ws
            if ws is not None:
                for mode, released in by_mode.items():
                    await self._request(ws, protocol.UNSUBSCRIBE, mode, released)

    async def _request(
        self, ws: ClientConnection, action: int, mode: int, instruments: Iterable[Instrument]
    ) -> list[Refusal]:
        """Send ``action`` for the instruments in batches, then wait until the broker is done."""
        batches: dict[str, list[Instrument]] = {}
        by_type: dict[int, list[Instrument]] = {}
        for instrument in instruments:
            by_type.setdefault(instrument.exchange_type, []).append(instrument)
        try:
            for exchange_type, group in by_type.items():
                for start in range(0, len(group), REQUEST_TOKENS):
                    batch = group[start : start + REQUEST_TOKENS]
                    correlation_id = f"fp{next(self._correlation) % 10**8}"
                    batches[correlation_id] = batch
                    tokens = {exchange_type: [i.token for i in batch]}
                    await ws.send(protocol.request(action, mode, tokens, correlation_id))
            await self._barrier(ws)
        except (ConnectionClosed, ConnectionError, TimeoutError):
            return []  # the reconnect subscribes everything held again
        refused = []
        for correlation_id, batch in batches.items():
            answer = self._refusals.pop(correlation_id, None)
            if answer is not None and action == protocol.SUBSCRIBE:
                code, message = answer
                refused += [Refusal(instrument, code, message) for instrument in batch]
        return refused

    async def _barrier(self, ws: ClientConnection) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pongs.append(waiter)
        await ws.send("ping")
        await asyncio.wait_for(waiter, ANSWER_TIMEOUT)

    @staticmethod
    def _key(instrument: Instrument) -> Key:
        return instrument.exchange_type, instrument.token

    def _add_route(self, instrument: Instrument, mode: int) -> None:
        topic = tick_topic(instrument.exchange, instrument.symbol, protocol.MODE_NAMES[mode])
        key = (instrument.exchange_type, instrument.token, mode)
        self._routes[key] = (instrument.symbol, instrument.exchange, topic)

    def _forget(self, instrument: Instrument) -> None:
        key = self._key(instrument)
        self._held.pop(key, None)
        for mode in protocol.MODES:
            self._routes.pop((*key, mode), None)

    # -- incoming -----------------------------------------------------------------------------

    def _on_tick(self, frame: bytes) -> None:
        try:
            packet = protocol.decode(frame)
        except protocol.ProtocolError as exc:
            self.log.warning("Connection %d: ignored a malformed tick: %s", self.index, exc)
            return
        route = self._routes.get((packet.exchange_type, packet.token, packet.mode))
        if route is None:
            return
        symbol, exchange, topic = route
        self.publisher.publish(topic, protocol.normalise(packet, symbol, exchange))
        self.ticks_received += 1
        self.last_tick_at = time.monotonic()

    def _on_pong(self) -> None:
        if self._pongs:
            waiter = self._pongs.popleft()
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _on_text(self, text: str) -> None:
        try:
            message = json.loads(text)
            code, reason = message["errorCode"], message.get("errorMessage", "")
            correlation_id = message.get("correlationID") or ""
        except (json.JSONDecodeError, TypeError, KeyError):
            self.log.warning(
                "Connection %d: unexpected text from the broker: %.200s", self.index, text
            )
            return
        self.log.warning("Connection %d: broker refused a request: %s %s", self.index, code, reason)
        self._refusals[correlation_id] = (code, reason)
