"""When the market trades: one clock for every held instrument, each trade sent to every
connection holding it.

Each instrument that some connection holds trades at random times, ``ticks_per_second`` times a
second on average (exponentially spaced). One trade goes to every connection holding the
instrument, in every mode each holds it in, as an exchange's trade reaches every subscriber.

The clock wakes on a grid of slots :data:`SLOT` wide, counted on the loop's clock. Every trade
falling due in a slot is made at the slot's start, in one :meth:`Market.trade` and with one
timestamp, and each connection gets its share of them (and the snapshots of what it just
subscribed) in one write. A connection whose client is not reading is skipped while it is
backlogged: it misses those trades, and the simulator's memory stays bounded. A clock that fell
behind (a busy machine) does not catch up with missed trades: the next trade of an instrument is
due a gap after now.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Protocol

import numpy as np

from backend.simulator.market import Market

# Trades falling due this close together are made in one wake-up, a little early.
SLOT = 0.005
# How early a timer may fire: libuv counts whole milliseconds, asyncio's own loop the monotonic
# clock's resolution. A clock woken that early still serves the slot it was woken for.
TIMER_SLACK = max(time.get_clock_info("monotonic").resolution, 0.001)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Subscriber(Protocol):
    """What the clock needs of a connection (a
    :class:`~backend.simulator.connection.SimulatedConnection`)."""

    muted: bool

    def backlogged(self) -> bool: ...

    def snapshots(self, timestamp_ms: int) -> list[np.ndarray]: ...

    def ticks(self, rows: np.ndarray, timestamp_ms: int) -> list[np.ndarray]: ...

    def write(self, packets: list[np.ndarray]) -> None: ...


class MarketClock:
    """Trades the held instruments of ``market`` and hands them to the :attr:`subscribers`.

    ``ticks_per_second`` is each instrument's mean rate (0: no trades, snapshots only);
    ``rng`` spaces the trades. :meth:`run` serves until cancelled.
    """

    def __init__(self, market: Market, ticks_per_second: float, rng: np.random.Generator) -> None:
        self.market = market
        self.ticks_per_second = ticks_per_second
        self.subscribers: list[Subscriber] = []
        self._rng = rng
        # Per market row: when it trades next (infinity: never), and how many connections hold it.
        self._due = np.full(0, np.inf)
        self._holders = np.zeros(0, np.int64)
        self._wake = asyncio.Event()

    def hold(self, row: int) -> None:
        """One more connection holds ``row``; the first starts its trades."""
        if row >= len(self._due):
            grow = len(self.market.figures) - len(self._due)
            self._due = np.append(self._due, np.full(grow, np.inf))
            self._holders = np.append(self._holders, np.zeros(grow, np.int64))
        self._holders[row] += 1
        if self._holders[row] == 1 and self.ticks_per_second:
            gap = self._rng.standard_exponential() / self.ticks_per_second
            self._due[row] = asyncio.get_running_loop().time() + gap
        self._wake.set()

    def release(self, row: int) -> None:
        """One connection fewer holds ``row``; with none left it trades no more."""
        self._holders[row] -= 1
        if not self._holders[row]:
            self._due[row] = np.inf

    def wake(self) -> None:
        """Serve now: a connection has snapshots to send."""
        self._wake.set()

    def set_rate(self, ticks_per_second: float) -> None:
        """Trade each held instrument this often from its next trade on (more than 0)."""
        self.ticks_per_second = ticks_per_second
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        wake = self._wake
        while True:
            # Cleared before the work, so that a subscription made meanwhile wakes us again.
            wake.clear()
            self._serve(loop.time())
            earliest = self._due.min() if self._due.size else math.inf
            timer = None
            if earliest < math.inf:
                timer = loop.call_at(math.floor(earliest / SLOT) * SLOT, wake.set)
            await wake.wait()
            if timer is not None:
                timer.cancel()

    def _serve(self, now: float) -> None:
        """Every snapshot waiting, then every trade due in the slot begun by ``now``."""
        timestamp = now_ms()
        packets: dict[Subscriber, list[np.ndarray]] = {}
        for subscriber in self.subscribers:
            if not subscriber.backlogged():
                packets[subscriber] = subscriber.snapshots(timestamp)
        receiving = [s for s in packets if not s.muted]
        due = self._due
        limit = (math.floor((now + TIMER_SLACK) / SLOT) + 1) * SLOT
        rows = np.flatnonzero(due < limit)
        mean_gap = 1 / (self.ticks_per_second or 1)
        # A row whose next trade falls in this slot trades again in this wake-up.
        while rows.size:
            self.market.trade(rows, timestamp)
            gaps = self._rng.standard_exponential(rows.size) * mean_gap
            due[rows] = np.maximum(due[rows], now) + gaps
            for subscriber in receiving:
                packets[subscriber] += subscriber.ticks(rows, timestamp)
            rows = rows[due[rows] < limit]
        for subscriber, sent in packets.items():
            if sent and not subscriber.muted:
                subscriber.write(sent)
