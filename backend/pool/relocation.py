"""Relocation: the symbols a reconnected connection could not take back, moved elsewhere.

A connection that reconnects subscribes again everything it held. What the broker refuses then
is no longer held there, and the pool places those symbols again as it places new ones, for all
their holders; when the broker refused them for the connection's symbol limit, the pool believes
it and treats that connection as full, so they go to other connections (after any other refusal
the first connection with room, that one included, is asked). A symbol it cannot place is logged
as lost, with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence

from backend.brokers.adapter import Refusal
from backend.instruments.master import Instrument
from backend.pool.in_flight import in_rounds
from backend.pool.outcomes import Outcome
from backend.pool.placement import Placement
from backend.pool.records import PooledConnection, Slot

log = logging.getLogger("feedpool.pool")

#: Who holds a symbol, by mode.
Holders = dict[int, set[Hashable]]
#: Holds symbols at a mode for a holder, as the pool's subscribe does.
Subscribe = Callable[[Sequence[tuple[str, str]], int, Hashable], Awaitable[list[Outcome]]]


class Relocation:
    """Places again what a reconnected connection refused.

    It works on the pool's ``slots`` and ``connections`` under the pool's ``lock``, places with
    ``placement``, and joins a slot another request placed meanwhile with ``subscribe``.
    """

    def __init__(
        self,
        slots: dict[tuple[str, str], Slot],
        connections: list[PooledConnection],
        lock: asyncio.Lock,
        placement: Placement,
        subscribe: Subscribe,
    ) -> None:
        self._slots = slots
        self._connections = connections
        self._lock = lock
        self._placement = placement
        self._subscribe = subscribe

    async def move_refused(self, index: int, refused: list[Refusal]) -> None:
        """Move the symbols connection ``index`` could not take back to other connections.

        While any of them has a request under way, all are taken up again once that is done;
        then those its connection still does not hold are taken off it at once, and moved.
        """
        keys = list({(r.instrument.symbol, r.instrument.exchange) for r in refused})
        async for round_ in in_rounds(keys):
            async with self._lock:
                connection = self._placement.connection(index)
                found = (self._slots.get(k) for k in round_.todo)
                mine = [s for s in found if s and s.connection == index]
                busy = [s.busy for s in mine if s.busy is not None]
                if busy:
                    round_.put_off_all(busy)
                    continue
                held = connection.adapter.held
                slots = [s for s in mine if connection.adapter.key(s.instrument) not in held]
                for slot in slots:
                    del self._slots[slot.instrument.symbol, slot.instrument.exchange]
                connection.symbols -= len(slots)
                over = [r for r in refused if r.capacity]
                if over:  # refused for the connection's limit: no more room on it
                    self._placement.believe_full(connection, over[0])
            placed = await self.place_again([(s.instrument, s.holders) for s in slots])
            for outcome in placed:
                if not outcome.ok:
                    log.error(
                        "[POOL] Lost %s on %s after connection %d reconnected: %s",
                        outcome.symbol,
                        outcome.exchange,
                        index,
                        outcome.message,
                    )

    async def place_again(self, entries: list[tuple[Instrument, Holders]]) -> list[Outcome]:
        """Place symbols not held by the pool, each for all its holders (``{mode: holders}``), at
        the highest mode held; one outcome per symbol, the refused ones not ``ok``."""
        saved = {(i.symbol, i.exchange): holders for i, holders in entries}
        by_mode: dict[int, list[Instrument]] = {}
        for instrument, holders in entries:
            by_mode.setdefault(max(holders), []).append(instrument)
        outcomes: list[Outcome] = []
        for mode, instruments in by_mode.items():
            placed, raced = await self._placement.place(
                instruments, mode, lambda i: saved[i.symbol, i.exchange]
            )
            for instrument in raced:  # another request placed it meanwhile: join its slot
                key = (instrument.symbol, instrument.exchange)
                joined = []
                for held_mode, holders in saved[key].items():
                    for holder in holders:
                        joined += await self._subscribe([key], held_mode, holder)
                placed.append(next((o for o in joined if not o.ok), joined[0]))
            outcomes += placed
        return outcomes
