"""The stale mark: which rows show prices that are not live, and why.

A row that shows prices, or is subscribed, is stale when

- the backend is down: it said so (``SYS.HEALTH``), the app's own backend process is not
  serving (:meth:`StaleWatch.backend_state`), or no ``SYS.POOL`` (published every second) has
  come for :data:`BACKEND_SILENT_SECONDS`;
- its connection is not connected (``SYS.POOL``'s connections, ``SYS.HEALTH``);
- it is not subscribed (waiting, rejected, pending) but shows prices from before;
- it is subscribed on a connection that is up and no tick has come for ``stale_seconds`` since
  its last tick, or since its subscription when none has.

A row that shows nothing and is not subscribed has no mark. Only the bus and the rows' ticks are
read, so an attached app's rows are marked as a run's; before the first ``SYS.POOL`` (a bus that
does not serve the app) only the ticks' silence marks a row.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

from backend.bus.messages import BackendHealth, ConnectionHealth, PoolStats
from backend.feed import CONNECTED
from desktop.link.process import FAILED, RESTARTING, STARTING, STOPPED, STOPPING
from desktop.watchlist.columns import SUBSCRIBED, WatchRow, clock_time
from desktop.watchlist.model import WatchlistModel

#: ``SYS.POOL`` comes every second: this long without one, the backend is taken as down.
BACKEND_SILENT_SECONDS = 3.5
#: A subscribed symbol that has not ticked this long, its connection up, is stale.
STALE_SECONDS = 30.0
CHECK_MS = 1000
#: ``SYS.HEALTH``'s state of a backend that serves.
BACKEND_READY = "ready"
#: The states of the app's own backend process in which it serves no ticks.
NOT_SERVING = frozenset({STARTING, RESTARTING, FAILED, STOPPING, STOPPED})


def _not_connected(index: int, state: str, reason: str) -> str:
    return f"connection {index} {state}" + (f": {reason}" if reason else "")


class Liveness:
    """What the bus last said of the backend and its connections; the backend is taken as down
    after :attr:`silent_seconds` without a ``SYS.POOL``."""

    def __init__(self) -> None:
        self.silent_seconds = BACKEND_SILENT_SECONDS
        #: When the last ``SYS.POOL`` came (epoch seconds; 0 before the first).
        self.pool_at = 0.0
        #: Why the backend said it is not serving; empty while it serves.
        self.backend_said = ""
        #: Why each connection that is not connected is not, by index.
        self.connections: dict[int, str] = {}

    def pool(self, stats: PoolStats, now: float) -> None:
        self.pool_at = now
        self.backend_said = ""
        self.connections = {
            c.index: _not_connected(c.index, c.state, c.reason)
            for c in stats.connections
            if c.state != CONNECTED
        }

    def health(self, health: BackendHealth | ConnectionHealth) -> None:
        if isinstance(health, ConnectionHealth):
            if health.state == CONNECTED:
                self.connections.pop(health.connection, None)
            else:
                self.connections[health.connection] = _not_connected(
                    health.connection, health.state, health.reason
                )
        elif health.state == BACKEND_READY:
            self.backend_said = ""
        else:
            self.backend_said = f"the backend is {health.state}" + (
                f" ({health.reason})" if health.reason else ""
            )

    def backend_down(self, now: float) -> str:
        """Why the backend is taken as down; empty while it is not."""
        if self.backend_said:
            return self.backend_said
        if self.pool_at and now - self.pool_at > self.silent_seconds:
            return f"no word from the backend since {clock_time(self.pool_at)}"
        return ""


def stale_reason(
    row: WatchRow, now: float, backend_down: str, connections: dict[int, str], stale_seconds: float
) -> str:
    """Why ``row``'s prices are not live; empty when they are, or when it shows none."""
    if row.status != SUBSCRIBED:
        if not row.heard:
            return ""
        return backend_down or "its prices are from an earlier subscription"
    if backend_down:
        return backend_down
    lost = connections.get(row.connection) if row.connection is not None else None
    if lost:
        return lost
    since = max(row.heard, row.subscribed_at)
    if now - since >= stale_seconds:
        return f"no tick since {clock_time(since)}"
    return ""


class StaleWatch(QObject):
    """Keeps the stale marks of ``model``'s rows: at every ``SYS.POOL`` and ``SYS.HEALTH`` and
    every ``check_ms``."""

    def __init__(
        self,
        model: WatchlistModel,
        stale_seconds: float = STALE_SECONDS,
        check_ms: int = CHECK_MS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(model)
        self.model = model
        self.stale_seconds = stale_seconds
        self.liveness = Liveness()
        self._clock = clock
        self._timer = QTimer(self)
        self._timer.setInterval(check_ms)
        self._timer.timeout.connect(self.check)
        self._timer.start()

    def pool(self, stats: PoolStats) -> None:
        self.liveness.pool(stats, self._clock())
        self.check()

    def health(self, health: BackendHealth | ConnectionHealth) -> None:
        self.liveness.health(health)
        self.check()

    def backend_state(self, state: str) -> None:
        """The app's own backend process is in ``state``: while it does not serve (it died and
        restarts, say, with no word on the bus), every row is stale at once; the next
        ``SYS.POOL`` clears the mark."""
        if state in NOT_SERVING:
            self.liveness.backend_said = f"the backend is {state}"
            self.check()

    def check(self) -> int:
        """Mark every row as it stands now; how many are stale."""
        now = self._clock()
        down = self.liveness.backend_down(now)
        connections = self.liveness.connections
        seconds = self.stale_seconds
        return self.model.mark_stale(lambda row: stale_reason(row, now, down, connections, seconds))
