"""Work in flight: a request meets a symbol the broker is still being asked about.

A slot is busy while a request to the broker about its symbol is under way (see
:class:`~backend.pool.records.Slot`). A request that meets a busy slot takes that symbol up again
once the work is done, so two requests for one symbol reach the broker in order: a subscribe never
overtakes the unsubscribe before it, and a symbol another request gave a slot meanwhile is joined,
not placed twice.

A request therefore goes in rounds (:func:`in_rounds`). Each round takes up its keys under the
pool's lock, decides what it can and puts off the rest, each with the work it waits for; the
broker is asked outside the lock. The next round takes up what was put off, once that work is
done; the request is over when a round puts nothing off.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)


class Round(Generic[Key]):
    """One round of a request: the keys it takes up (``todo``), and those it puts off."""

    __slots__ = ("_put_off", "_waits_for", "todo")

    def __init__(self, todo: list[Key]) -> None:
        self.todo = todo
        self._put_off: list[Key] = []
        self._waits_for: list[asyncio.Future[None]] = []

    def put_off(self, key: Key, until: asyncio.Future[None] | None = None) -> None:
        """Take ``key`` up again next round, once ``until`` (work in flight) is done if given."""
        self._put_off.append(key)
        if until is not None:
            self._waits_for.append(until)

    def put_off_all(self, until: list[asyncio.Future[None]]) -> None:
        """Take every key of this round up again next round, once all of ``until`` is done."""
        self._put_off += self.todo
        self._waits_for += until

    async def next_todo(self) -> list[Key]:
        """The keys put off, once the work they wait for is done."""
        if self._waits_for:
            await asyncio.wait(self._waits_for)
        return self._put_off


async def in_rounds(keys: list[Key]) -> AsyncIterator[Round[Key]]:
    """The rounds of a request for ``keys``: the first takes them all up, each next one what the
    one before put off; they end when a round puts nothing off."""
    todo = keys
    while todo:
        current = Round(todo)
        yield current
        todo = await current.next_todo()
