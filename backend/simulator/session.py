"""One simulated broker connection: its subscriptions and its ticks, whatever the broker.

A :class:`Session` runs two tasks over one WebSocket (an aiohttp server's):

- the reader answers requests strictly in arrival order, through the broker dialect's
  :meth:`Session.answer`;
- the sender sends a snapshot of each newly held (token, mode) at once, then ticks. Every held
  token is due once in a :class:`~backend.simulator.schedule.TickSchedule`; each tick is one trade
  of the token's :class:`~backend.simulator.market.PriceWalk` and one packet per mode it is held
  in, and the next tick falls due after an exponentially distributed interval. One task and one
  timer serve every token of the connection, and the ticks of one slot of the schedule (a few
  milliseconds) go out in one wake-up with one timestamp, handed to the dialect's
  :meth:`Session.send_packets` together.

A muted session (:meth:`Session.mute`) goes on answering requests, and aiohttp answers its
WebSocket pings, but it sends no more ticks.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from backend.simulator.market import QUANTILES, STANDARD_EXPONENTIAL, Market, PriceWalk
from backend.simulator.schedule import TickSchedule

log = logging.getLogger("feedpool.simulator")

# Ticks falling due this close together go out in one wake-up of the sender, a little early.
BATCH_WINDOW = 0.005
# How early a timer may fire: libuv counts whole milliseconds, asyncio's own loop the monotonic
# clock's resolution. A sender woken that early still takes the slot it was woken for.
TIMER_SLACK = max(time.get_clock_info("monotonic").resolution, 0.001)


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """A snapshot of one open connection, for tests and the command line."""

    id: int
    client_code: str
    token_count: int
    tokens: frozenset[Hashable]


class Holding:
    """One token held by a connection: its key, its walk, the modes held in order held, and the
    loop time its next tick is due."""

    __slots__ = ("due", "key", "modes", "walk")

    def __init__(self, key: Hashable, walk: PriceWalk, due: float) -> None:
        self.key = key
        self.walk = walk
        self.modes: list[int] = []
        self.due = due


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Session:
    """The state and tasks of one accepted connection; :meth:`run` serves it until it closes.

    ``websocket`` is the prepared connection and ``request`` its handshake; ``account`` is who
    connected (a client code, an API key's owner); ``ticks_per_second`` is each token's mean
    tick rate (0: snapshots only); ``max_tokens`` caps the distinct tokens held, whatever
    their modes; ``rng`` spaces the ticks. A broker's dialect subclasses it with
    :meth:`answer` and :meth:`send_packets`, and :meth:`packet` for its tick layout.
    """

    def __init__(
        self,
        connection_id: int,
        account: str,
        websocket: web.WebSocketResponse,
        request: web.Request,
        market: Market,
        *,
        ticks_per_second: float,
        max_tokens: int,
        rng: random.Random,
    ) -> None:
        self.id = connection_id
        self.account = account
        self.websocket = websocket
        self.request = request
        #: The connection's socket, to drop it.
        self.transport = request.transport
        self.muted = False
        self._market = market
        self._rate = ticks_per_second
        self.max_tokens = max_tokens
        self._rng = rng
        self.held: dict[Hashable, Holding] = {}
        # A holding left with no mode is skipped and forgotten when it comes due.
        self._schedule: TickSchedule[Holding] = TickSchedule(BATCH_WINDOW)
        self._snapshots: deque[tuple[Holding, int]] = deque()
        self._wake = asyncio.Event()
        self.finished = asyncio.Event()

    @property
    def info(self) -> ConnectionInfo:
        return ConnectionInfo(self.id, self.account, len(self.held), frozenset(self.held))

    def holds(self, key: Hashable) -> bool:
        return key in self.held

    async def run(self) -> None:
        """Read requests and send ticks until the connection closes."""
        tasks = [
            asyncio.create_task(self._read_requests()),
            asyncio.create_task(self._send_ticks()),
            *(asyncio.create_task(task) for task in self.background()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                raise outcome

    def background(self) -> list[Any]:
        """More coroutines to run beside the reader and the sender (a heartbeat, say)."""
        return []

    # What a dialect provides

    async def answer(self, message: str | bytes) -> None:
        """Answer one request."""
        raise NotImplementedError

    def packet(self, holding: Holding, mode: int, timestamp_ms: int) -> bytes:
        """The token's current state as one ``mode`` packet."""
        raise NotImplementedError

    async def send_packets(self, packets: list[bytes]) -> None:
        """Send the packets of one wake-up."""
        raise NotImplementedError

    def log_refusal(self, code: str, reason: str) -> None:
        log.info("connection %d: refused request (%s): %s", self.id, code, reason)

    def mute(self) -> None:
        """Send no more ticks, snapshots included; requests are still answered."""
        self.muted = True

    def set_rate(self, ticks_per_second: float) -> None:
        """Tick each held token this often from its next tick on (more than 0: a token held
        at rate 0 has no next tick)."""
        self._rate = ticks_per_second
        self._wake.set()

    # Holding and letting go

    def hold(self, key: Hashable, mode: int) -> None:
        """Hold ``key`` in ``mode`` too, with a snapshot of it in that mode."""
        holding = self.held.get(key)
        if holding is None:
            due = asyncio.get_running_loop().time()
            if self._rate:
                due += self._rng.expovariate(self._rate)
            holding = self.held[key] = Holding(key, self._market.walk(key, now_ms()), due)
            if self._rate:
                self._schedule.add(holding, due)
        if mode not in holding.modes:
            holding.modes.append(mode)
            self._snapshots.append((holding, mode))
        self._wake.set()

    def drop(self, key: Hashable, mode: int | None = None) -> None:
        """Stop holding ``key`` in ``mode`` (every mode: ``None``); with none left it is freed."""
        holding = self.held.get(key)
        if holding is None:
            return
        if mode is None:
            holding.modes.clear()
        elif mode in holding.modes:
            holding.modes.remove(mode)
        if not holding.modes:
            del self.held[key]

    # Requests and ticks

    async def _read_requests(self) -> None:
        try:
            async for message in self.websocket:
                if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    return  # an error: aiohttp closes the connection
                await self.answer(message.data)
        except ConnectionResetError:  # answering a connection that is closing
            pass

    async def _send_ticks(self) -> None:
        loop = asyncio.get_running_loop()
        schedule, snapshots, wake = self._schedule, self._snapshots, self._wake
        draw, exponential = self._rng.random, STANDARD_EXPONENTIAL
        packet, send = self.packet, self.send_packets
        try:
            while True:
                mean_gap = 1 / (self._rate or 1)
                # Cleared before the work, so that a subscription during a send wakes us again.
                wake.clear()
                packets = []
                while snapshots:
                    holding, mode = snapshots.popleft()
                    if mode in holding.modes:
                        packets.append(packet(holding, mode, now_ms()))
                now = loop.time()
                timestamp = now_ms()
                # A token whose next tick falls in the slot being sent ticks again in this batch.
                batch = schedule.take(now + TIMER_SLACK)
                while batch:
                    for holding in batch:
                        if not holding.modes:
                            continue
                        # A sender that fell behind (a slow reader, a busy machine) does not
                        # catch up with ticks missed: the next tick is due a gap from now.
                        due = holding.due
                        holding.due = due = (due if due > now else now) + (
                            exponential[int(draw() * QUANTILES)] * mean_gap
                        )
                        schedule.add(holding, due)
                        holding.walk.step(timestamp)
                        for mode in holding.modes:
                            packets.append(packet(holding, mode, timestamp))
                    batch = schedule.take(now + TIMER_SLACK)
                if packets and not self.muted:
                    await send(packets)
                start = schedule.next_start()
                timer = loop.call_at(start, wake.set) if start is not None else None
                await wake.wait()
                if timer is not None:
                    timer.cancel()
        except ConnectionResetError:  # the connection is closing
            pass
