"""Each watched symbol's last traded price since the app started, in bounded memory; no Qt.

Prices are sampled once a second. A trail keeps at most :data:`CAPACITY` points: when it is full,
every other point is dropped and the trail keeps one point in twice as many seconds from then
on, so it always spans the whole time since the symbol was first sampled.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable

from desktop.watchlist.columns import WatchRow

CAPACITY = 600
Key = tuple[str, str]  # symbol, exchange


class PriceTrail:
    """One symbol's sampled prices, oldest first."""

    __slots__ = ("capacity", "prices", "step", "times")

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self.times = array("d")
        self.prices = array("d")
        self.step = 1.0  # seconds between the points kept

    def add(self, time: float, price: float) -> None:
        if self.times and time - self.times[-1] < self.step:
            return
        self.times.append(time)
        self.prices.append(price)
        if len(self.times) > self.capacity:
            self.times, self.prices = self.times[::2], self.prices[::2]
            self.step *= 2

    def __len__(self) -> int:
        return len(self.times)


class PriceTrails:
    """A :class:`PriceTrail` per watched symbol."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._trails: dict[Key, PriceTrail] = {}

    def sample(self, time: float, rows: Iterable[WatchRow]) -> None:
        """Add each row's price, if it has one yet."""
        for row in rows:
            if row.ltp is not None:
                trail = self._trails.get(row.key)
                if trail is None:
                    trail = self._trails[row.key] = PriceTrail(self.capacity)
                trail.add(time, row.ltp)

    def trail(self, key: Key) -> PriceTrail | None:
        return self._trails.get(key)

    def forget(self, keys: Iterable[Key]) -> None:
        for key in keys:
            self._trails.pop(key, None)
