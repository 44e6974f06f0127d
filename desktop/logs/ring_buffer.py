"""A fixed-capacity ring of items with O(1) indexing, append and dropping from the front."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class RingBuffer(Generic[T]):
    """Holds at most ``capacity`` items in order; the caller drops the oldest to make room."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._slots: list[T | None] = [None] * capacity
        self._start = 0
        self._size = 0

    @property
    def capacity(self) -> int:
        return len(self._slots)

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, index: int) -> T:
        if not 0 <= index < self._size:
            raise IndexError(index)
        return self._slots[(self._start + index) % len(self._slots)]  # type: ignore[return-value]

    def __iter__(self) -> Iterator[T]:
        for index in range(self._size):
            yield self[index]

    def room(self) -> int:
        return len(self._slots) - self._size

    def drop_front(self, count: int) -> None:
        """Forget the ``count`` oldest items."""
        count = min(count, self._size)
        for offset in range(count):
            self._slots[(self._start + offset) % len(self._slots)] = None
        self._start = (self._start + count) % len(self._slots)
        self._size -= count

    def extend(self, items: Iterable[T]) -> None:
        """Append items; ``OverflowError`` if one does not fit (drop the front first)."""
        for item in items:
            if self._size == len(self._slots):
                raise OverflowError("ring buffer full")
            self._slots[(self._start + self._size) % len(self._slots)] = item
            self._size += 1
