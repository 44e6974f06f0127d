"""What the pool keeps: a slot for each symbol it holds, and a record of each connection it opened.

A symbol takes one slot on one connection whatever modes it is held in; the connection holds it
at the highest mode anyone holds, and moves it down when the highest holder lets go. Holds are
counted per holder (a client, the desktop watchlist) and mode.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from dataclasses import dataclass, field

from backend.brokers.adapter import BrokerAdapter
from backend.instruments.master import Instrument
from backend.pool.outcomes import Outcome


@dataclass(slots=True)
class Slot:
    """One symbol on one connection, and who holds it in which modes."""

    instrument: Instrument
    connection: int
    holders: dict[int, set[Hashable]] = field(default_factory=dict)  # mode -> holders
    #: Set while a request to the broker about this symbol is under way; done when it ends.
    busy: asyncio.Future[None] | None = None

    def start_work(self) -> None:
        self.busy = asyncio.get_running_loop().create_future()

    def end_work(self) -> None:
        if self.busy is not None and not self.busy.done():
            self.busy.set_result(None)
        self.busy = None

    @property
    def mode(self) -> int:
        return max(self.holders)

    def outcome(self, mode: int) -> Outcome:
        """The outcome of a request that held this slot at ``mode``, or let go of it."""
        instrument = self.instrument
        return Outcome(
            instrument.symbol, instrument.exchange, mode, True, connection=self.connection
        )


@dataclass(slots=True)
class PooledConnection:
    """One connection the pool opened: its room, its load and its rate of ticks."""

    adapter: BrokerAdapter
    capacity: int
    symbols: int = 0
    #: Room taken by symbols whose subscription the broker has not answered yet.
    reserved: int = 0
    peak: int = 0
    ticks_seen: int = 0
    rate: float = 0.0
    #: Connected, as the broker last said; a connection that was up and goes down is news.
    up: bool = True
