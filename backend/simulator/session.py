"""One simulated broker connection: its subscriptions, its requests and its ticks.

A :class:`Session` runs two tasks over one WebSocket:

- the reader answers requests strictly in arrival order: subscribe and unsubscribe requests, the
  text ``ping``, and refusals (E1001 for a malformed request, E1002 past the token limit);
- the sender sends a snapshot of each newly subscribed (token, mode) at once, then ticks. Every
  held token has one entry in a heap of due times; each tick is one trade of the token's
  :class:`~backend.simulator.market.PriceWalk` and one frame per mode it is held in, and the next
  tick falls due after an exponentially distributed interval. One task and one timer serve every
  token of the connection, and ticks due within a few milliseconds go out in one wake-up.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import random
import time
from collections import deque
from dataclasses import dataclass

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from backend.simulator.market import Market, PriceWalk
from backend.smartstream.protocol import (
    ERROR_INVALID_PAYLOAD,
    ERROR_SUBSCRIPTION_LIMIT,
    MAX_CORRELATION_ID,
    SUBSCRIBE,
    ProtocolError,
    Request,
    error_frame,
    parse_request,
)

log = logging.getLogger("feedpool.simulator")

Key = tuple[int, str]  # (exchangeType, token)

# Ticks falling due this close together go out in one wake-up of the sender, a little early.
BATCH_WINDOW = 0.005


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """A snapshot of one open connection, for tests and the command line."""

    id: int
    client_code: str
    token_count: int
    tokens: frozenset[Key]


class _Holding:
    """One token held by a connection: its walk and the modes it is held in, in order held."""

    __slots__ = ("modes", "walk")

    def __init__(self, walk: PriceWalk) -> None:
        self.walk = walk
        self.modes: list[int] = []


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _correlation_id(text: str) -> str:
    """The correlationID of a malformed request, to echo in its E1001, when it has a valid one."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return ""
    correlation_id = message.get("correlationID") if isinstance(message, dict) else None
    if isinstance(correlation_id, str) and len(correlation_id) <= MAX_CORRELATION_ID:
        return correlation_id
    return ""


class Session:
    """The state and tasks of one accepted connection; :meth:`run` serves it until it closes.

    ``ticks_per_second`` is each token's mean tick rate (0: snapshots only); ``max_tokens`` caps
    the distinct tokens held, whatever their modes; ``rng`` spaces the ticks.
    """

    def __init__(
        self,
        connection_id: int,
        client_code: str,
        websocket: ServerConnection,
        market: Market,
        *,
        ticks_per_second: float,
        max_tokens: int,
        rng: random.Random,
    ) -> None:
        self.id = connection_id
        self.client_code = client_code
        self.websocket = websocket
        self._market = market
        self._rate = ticks_per_second
        self._max_tokens = max_tokens
        self._rng = rng
        self._held: dict[Key, _Holding] = {}
        # (due loop time, tie-breaker, holding); a holding left with no mode is skipped and
        # dropped when it comes due.
        self._due: list[tuple[float, int, _Holding]] = []
        self._order = itertools.count()
        self._snapshots: deque[tuple[_Holding, int]] = deque()
        self._wake = asyncio.Event()
        self.finished = asyncio.Event()

    @property
    def info(self) -> ConnectionInfo:
        return ConnectionInfo(self.id, self.client_code, len(self._held), frozenset(self._held))

    def holds(self, key: Key) -> bool:
        return key in self._held

    async def run(self) -> None:
        """Read requests and send ticks until the connection closes."""
        tasks = (
            asyncio.create_task(self._read_requests()),
            asyncio.create_task(self._send_ticks()),
        )
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                raise outcome

    # Requests

    async def _read_requests(self) -> None:
        try:
            async for message in self.websocket:
                await self._answer(message)
        except ConnectionClosed:
            pass

    async def _answer(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            await self._refuse(ERROR_INVALID_PAYLOAD, "", "binary frame")
            return
        if message == "ping":
            await self.websocket.send("pong")
            return
        try:
            request = parse_request(message)
        except ProtocolError as exc:
            await self._refuse(ERROR_INVALID_PAYLOAD, _correlation_id(message), str(exc))
            return
        if request.action == SUBSCRIBE:
            await self._subscribe(request)
        else:
            self._unsubscribe(request)

    async def _refuse(self, error: tuple[str, str], correlation_id: str, reason: str) -> None:
        log.info("connection %d: refused request (%s): %s", self.id, error[0], reason)
        await self.websocket.send(error_frame(error, correlation_id))

    async def _subscribe(self, request: Request) -> None:
        """Hold every token of ``request`` in its mode, or none if that passes the token limit."""
        tokens = dict.fromkeys(request.tokens)  # distinct, in request order
        new = sum(key not in self._held for key in tokens)
        if len(self._held) + new > self._max_tokens:
            reason = f"{len(self._held)} tokens held + {new} new > {self._max_tokens}"
            await self._refuse(ERROR_SUBSCRIPTION_LIMIT, request.correlation_id, reason)
            return
        now = asyncio.get_running_loop().time()
        now_ms = _now_ms()
        for key in tokens:
            holding = self._held.get(key)
            if holding is None:
                holding = self._held[key] = _Holding(self._market.walk(*key, now_ms))
                if self._rate:
                    due = now + self._rng.expovariate(self._rate)
                    heapq.heappush(self._due, (due, next(self._order), holding))
            if request.mode not in holding.modes:
                holding.modes.append(request.mode)
                self._snapshots.append((holding, request.mode))
        self._wake.set()

    def _unsubscribe(self, request: Request) -> None:
        """Drop the request's mode of each token; a token left with no mode is freed."""
        for key in request.tokens:
            holding = self._held.get(key)
            if holding is not None and request.mode in holding.modes:
                holding.modes.remove(request.mode)
                if not holding.modes:
                    del self._held[key]

    # Ticks

    async def _send_ticks(self) -> None:
        loop = asyncio.get_running_loop()
        send = self.websocket.send
        due, snapshots, wake = self._due, self._snapshots, self._wake
        expovariate = self._rng.expovariate
        try:
            while True:
                # Cleared before the work, so that a subscription during a send wakes us again.
                wake.clear()
                while snapshots:
                    holding, mode = snapshots.popleft()
                    if mode in holding.modes:
                        await send(holding.walk.frame(mode, _now_ms()))
                horizon = loop.time() + BATCH_WINDOW
                while due and due[0][0] <= horizon:
                    at, order, holding = due[0]
                    if not holding.modes:
                        heapq.heappop(due)
                        continue
                    heapq.heapreplace(due, (at + expovariate(self._rate), order, holding))
                    walk = holding.walk
                    timestamp = _now_ms()
                    walk.step(timestamp)
                    for mode in holding.modes:
                        await send(walk.frame(mode, timestamp))
                timer = loop.call_at(due[0][0], wake.set) if due else None
                await wake.wait()
                if timer is not None:
                    timer.cancel()
        except ConnectionClosed:
            pass
