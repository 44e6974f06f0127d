"""When the held tokens of a connection tick next: a calendar of slots one batch window wide.

A token due at loop time ``t`` goes in slot ``floor(t / width)``; adding one is an append, and
the sender takes whole slots at a time, so a tick costs no heap comparisons. Slots are counted
from the loop's clock, not from the connection, so every connection's sender wakes on the same
grid and the loop serves them in one turn.
"""

from __future__ import annotations

import heapq
from typing import Generic, TypeVar

Item = TypeVar("Item")


class TickSchedule(Generic[Item]):
    """Items, each due at a loop time, taken slot by slot once their slot has begun.

    An item is taken at most ``width`` seconds before it is due, never after its slot began.
    """

    __slots__ = ("_per_second", "_slots", "_starts", "width")

    def __init__(self, width: float) -> None:
        self.width = width
        self._per_second = 1 / width
        self._slots: dict[int, list[Item]] = {}
        self._starts: list[int] = []  # a heap of the slots held

    def add(self, item: Item, due: float) -> None:
        """Take ``item`` once the slot holding loop time ``due`` has begun."""
        slot = int(due * self._per_second)
        items = self._slots.get(slot)
        if items is None:
            self._slots[slot] = [item]
            heapq.heappush(self._starts, slot)
        else:
            items.append(item)

    def next_start(self) -> float | None:
        """The loop time the earliest slot begins, ``None`` if nothing is held."""
        return self._starts[0] * self.width if self._starts else None

    def take(self, now: float) -> list[Item]:
        """Every item of every slot begun by loop time ``now``, earliest slot first."""
        starts, slots = self._starts, self._slots
        current = int(now * self._per_second)
        taken: list[Item] = []
        while starts and starts[0] <= current:
            items = slots.pop(heapq.heappop(starts))
            if taken:
                taken += items
            else:
                taken = items
        return taken
