"""The last minutes of the pool, one sample a second, and the events among them; no Qt.

Each sample takes, from the latest ``SYS.POOL`` statistics, every connection's tick rate (with
several broker accounts, every account's: its connections' summed), their total and the ticks the
pool shed since the previous sample, and the feed's worst lag of that second. Symbols moved from
one account to another (``SYS.MOVES``: failovers and returns) are events, as a connection's
reconnect is. Every series and the list of events keep :data:`CAPACITY` entries at most.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from backend.bus.messages import PoolStats, SymbolsMoved
from backend.feed import FAILOVER, RECONNECTING, RETURN, SESSION_EXPIRED
from backend.logs.wording import counted

CAPACITY = 15 * 60  # 15 minutes of one sample a second
#: The health states that mark an event on the history, and how the marker reads.
EVENT_STATES = {RECONNECTING: "reconnect", SESSION_EXPIRED: "session expired"}
#: The moves between accounts that mark an event on the history.
EVENT_MOVES = (FAILOVER, RETURN)
#: A rate series' key: a connection's index, or (with several accounts) an account's name.
SeriesKey = int | str


class Series:
    """Points ``(time, value)`` in time order, the oldest dropped past ``capacity``."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.times: deque[float] = deque(maxlen=capacity)
        self.values: deque[float] = deque(maxlen=capacity)

    def add(self, time: float, value: float) -> None:
        self.times.append(time)
        self.values.append(value)

    def __len__(self) -> int:
        return len(self.times)


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened to a connection or an account, at ``time`` (epoch seconds);
    ``move`` for symbols moved between accounts."""

    time: float
    label: str
    move: bool = False


class PoolHistory:
    """The series the History dock plots."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        #: Ticks per second, per connection index; with several accounts, per account name.
        self.rates: dict[SeriesKey, Series] = {}
        self.total = Series(capacity)
        self.lag = Series(capacity)
        self.shed = Series(capacity)
        self.events: deque[Event] = deque(maxlen=capacity)
        self._shed_before: int | None = None
        self._healed_before: dict[int, int] = {}

    def sample(self, time: float, pool: PoolStats | None, lag_ms: float | None) -> list[Event]:
        """Add one second: the pool's latest statistics (if any came) and the feed's lag.

        Returns the events the statistics show: each silent feed healed since the last sample.
        """
        if lag_ms is not None:
            self.lag.add(time, lag_ms)
        if pool is None:
            return []
        events = []
        for key, rate in _rates(pool).items():
            series = self.rates.get(key)
            if series is None:
                series = self.rates[key] = Series(self.capacity)
            series.add(time, rate)
        self.total.add(time, sum(c.ticks_per_second for c in pool.connections))
        for connection in pool.connections:
            healed = self._healed_before.get(connection.index, connection.feeds_healed)
            if connection.feeds_healed > healed:
                events.append(Event(time, f"#{connection.index} silent feed healed"))
            self._healed_before[connection.index] = connection.feeds_healed
        shed = sum(c.ticks_shed for c in pool.connections)
        # A restarted backend counts from zero again.
        before = self._shed_before if self._shed_before is not None else shed
        self.shed.add(time, max(shed - before, 0))
        self._shed_before = shed
        self.events.extend(events)
        return events

    def oldest(self) -> float | None:
        """The time of the oldest sample held; ``None`` before the first."""
        series = (self.total, self.lag, self.shed, *self.rates.values())
        firsts = [s.times[0] for s in series if s.times]
        return min(firsts) if firsts else None

    def note_moves(self, time: float, moved: SymbolsMoved) -> Event | None:
        """Mark symbols moved between accounts, if the move is a failover or a return; the
        event."""
        if moved.kind not in EVENT_MOVES:
            return None
        symbols = counted(len(moved.symbols), "symbol")
        label = f"{moved.kind} {moved.from_account} → {moved.to_account}: {symbols}"
        event = Event(time, label, move=True)
        self.events.append(event)
        return event

    def note_health(self, time: float, connection: int, state: str) -> Event | None:
        """Mark a connection's state change if it is an event worth seeing; the event."""
        label = EVENT_STATES.get(state)
        if label is None:
            return None
        event = Event(time, f"#{connection} {label}")
        self.events.append(event)
        return event


def _rates(pool: PoolStats) -> dict[SeriesKey, float]:
    """Ticks per second by connection index; with several accounts, by account name."""
    if len(pool.accounts) < 2:
        return {c.index: c.ticks_per_second for c in pool.connections}
    rates: dict[SeriesKey, float] = {account.name: 0.0 for account in pool.accounts}
    for connection in pool.connections:
        rates[connection.account] = rates.get(connection.account, 0.0) + connection.ticks_per_second
    return rates
