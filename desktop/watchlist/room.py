"""When rows waiting for room are asked for again: as the pool's room frees, in watchlist order.

The app sees the pool's room in ``SYS.POOL`` (published every second and after every request):
the room left on each open connection, and on the connections it may still open. Room frees when
rows are removed, another client lets symbols go, or a connection the broker had refused more
symbols comes back. That figure can overstate the room: the broker may allow fewer connections
than configured, which ``SYS.POOL`` does not tell. So after a refusal for capacity, the room the
pool showed then is taken as none, and rows are asked for again only when it shows more than that
(it is lowered with the room shown, so room taken and freed again counts).
"""

from __future__ import annotations

from backend.bus.messages import PoolStats


def free_room(stats: PoolStats) -> int:
    """Symbols the pool could still take: on its open connections and on those it may open."""
    open_room = sum(max(c.capacity - c.symbols, 0) for c in stats.connections)
    unopened = max(stats.max_connections - stats.active_connections, 0)
    return open_room + unopened * stats.max_symbols_per_connection


class RoomWatch:
    """How many rows waiting for room to ask for, from each ``SYS.POOL``."""

    def __init__(self) -> None:
        self._shown = 0  # the room the last SYS.POOL showed
        self._refused_at: int | None = None  # the room shown at the last refusal

    def room(self, stats: PoolStats) -> int:
        """The room to fill with waiting rows now (0 when none has freed since a refusal)."""
        self._shown = free = free_room(stats)
        if self._refused_at is None:
            return free
        self._refused_at = min(self._refused_at, free)
        return free - self._refused_at

    def refused(self) -> None:
        """The pool refused rows for capacity: the room it shows now is not room."""
        self._refused_at = self._shown
