"""What each gauge shows, worked out from the pool's statistics (``SYS.POOL``): texts, fill and
colour, without Qt; and the heading of each broker account's gauges."""

from __future__ import annotations

from dataclasses import dataclass, replace

from backend.bus.messages import AccountStats, ConnectionStats, PoolStats
from backend.feed import CONNECTED, DOWN, SESSION_EXPIRED
from backend.logs.wording import counted
from desktop.colours import FULL_COLOUR, state_colour, utilisation_colour

LOG_IN_AGAIN = "session expired: log in again"
STALE_NUMBERS = "numbers from before"
#: Characters of a broker's reason shown on a gauge; the tooltip has all of it.
REASON_CHARACTERS = 60


@dataclass(frozen=True, slots=True)
class GaugeReading:
    """Everything one gauge paints.

    ``value`` and ``capacity`` are the big numbers ("732" of "1,000"); ``fraction`` fills the arc;
    ``badge`` is the emphasised line under it (a state, or how full the pool is), drawn in
    ``colour`` like the arc; ``details`` are the smaller lines below.
    """

    title: str
    value: str
    capacity: str
    fraction: float
    colour: str
    badge: str
    details: tuple[str, ...] = ()

    @property
    def headline(self) -> str:
        return f"{self.value} / {self.capacity}"


EMPTY_POOL = GaugeReading(
    title="Pool",
    value="0",
    capacity="0",
    fraction=0.0,
    colour=utilisation_colour(0.0),
    badge="no pool yet",
)


def needs_login(pool: PoolStats) -> bool:
    """Whether the trader must log in again: the broker ended the session."""
    return bool(pool.session_problem) or any(c.state == SESSION_EXPIRED for c in pool.connections)


def account_needs_login(account: AccountStats) -> bool:
    """Whether the trader must log in to ``account`` again: the broker ended its session."""
    return bool(account.session_problem)


def account_heading(account: AccountStats) -> tuple[str, str]:
    """The heading over an account's gauges, and its colour: its name and broker, whether it
    serves (and why not), and the symbols it carries for others and others carry for it."""
    if account.serving:
        state, colour = "serving", state_colour(CONNECTED)
    elif account.session_problem:
        state = f"not serving: {_shortened(account.session_problem)}"
        colour = state_colour(SESSION_EXPIRED)
    else:
        state, colour = "not serving", state_colour(DOWN)
    parts = [f"{account.name} ({account.broker})", state]
    if account.borrowed:
        parts.append(f"{account.borrowed:,} borrowed")
    if account.lent:
        parts.append(f"{account.lent:,} lent")
    return " · ".join(parts), colour


def tick_age_text(age_ms: int | None) -> str:
    """How long ago the last tick came: "3 ms", "1.2 s", "4 min"."""
    if age_ms is None:
        return "no ticks yet"
    if age_ms < 1000:
        return f"last tick {age_ms} ms ago"
    if age_ms < 60_000:
        return f"last tick {age_ms / 1000:.1f} s ago"
    return f"last tick {age_ms // 60_000} min ago"


def percent_text(value: int, capacity: int) -> str:
    """``value`` as a share of ``capacity`` to a tenth of a percent, rounded down so that only a
    full capacity reads 100 % (2,999 of 3,000 is "99.9 %"), and a share too small to show reads
    "< 0.1 %", not nothing."""
    tenths = value * 1000 // capacity if capacity > 0 else 0
    if value > 0 and tenths == 0:
        return "< 0.1 %"
    return f"{tenths / 10:.1f} %"


def _fraction(value: int, capacity: int) -> float:
    return min(max(value / capacity, 0.0), 1.0) if capacity > 0 else 0.0


def _shortened(text: str) -> str:
    return text if len(text) <= REASON_CHARACTERS else text[: REASON_CHARACTERS - 1] + "…"


def _connection_badge(connection: ConnectionStats) -> tuple[str, str]:
    """The badge and colour of a connection: its state, and "full" when a connected one holds
    all it may."""
    if connection.state == SESSION_EXPIRED:
        return LOG_IN_AGAIN, state_colour(SESSION_EXPIRED)
    if connection.state == CONNECTED and connection.symbols >= connection.capacity > 0:
        return f"{CONNECTED}, full", FULL_COLOUR
    return connection.state, state_colour(connection.state)


def connection_reading(connection: ConnectionStats) -> GaugeReading:
    """The gauge of one pooled connection: symbols held of its capacity, coloured by state."""
    expired = connection.state == SESSION_EXPIRED
    badge, colour = _connection_badge(connection)
    return GaugeReading(
        title=f"Connection {connection.index}",
        value=f"{connection.symbols:,}",
        capacity=f"{connection.capacity:,}",
        fraction=_fraction(connection.symbols, connection.capacity),
        colour=colour,
        badge=badge,
        details=(
            *([_shortened(connection.reason)] if expired and connection.reason else []),
            f"{connection.ticks_per_second:,.1f} ticks/s",
            tick_age_text(connection.last_tick_age_ms),
            f"peak {connection.peak_symbols:,}",
            *(
                [f"{counted(connection.ticks_shed, 'stale tick')} shed"]
                if connection.ticks_shed
                else []
            ),
            *(
                [f"{counted(connection.feeds_healed, 'silent feed')} healed"]
                if connection.feeds_healed
                else []
            ),
        ),
    )


def pool_reading(pool: PoolStats) -> GaugeReading:
    """The total gauge: symbols held of the pool's capacity, coloured by how full it is; with
    several broker accounts, their sums."""
    fraction = _fraction(pool.total_symbols, pool.capacity)
    owner = "/".join(part for part in (pool.broker, pool.user_id) if part)
    if len(pool.accounts) > 1:
        owner = f"of {len(pool.accounts)} accounts"
    problem = pool.session_problem
    return GaugeReading(
        title=f"Pool {owner}" if owner else "Pool",
        value=f"{pool.total_symbols:,}",
        capacity=f"{pool.capacity:,}",
        fraction=fraction,
        colour=state_colour(SESSION_EXPIRED) if problem else utilisation_colour(fraction),
        badge=LOG_IN_AGAIN
        if problem
        else f"{percent_text(pool.total_symbols, pool.capacity)} used",
        details=(
            *([_shortened(problem)] if problem else []),
            f"peak {pool.peak_symbols:,}",
            f"{pool.active_connections} of {counted(pool.max_connections, 'connection')}"
            f" (peak {pool.peak_connections})",
        ),
    )


def backend_reading(reading: GaugeReading, state: str, detail: str) -> GaugeReading:
    """``reading`` while the backend is not serving (``state``, e.g. restarting) or has not yet
    published its pool: in the backend state's colour, the badge naming that state and the
    details saying why, and that any numbers shown are the last ones it published."""
    stale = () if reading is EMPTY_POOL else (STALE_NUMBERS,)
    return replace(
        reading,
        colour=state_colour(state),
        badge=f"backend {state}",
        details=(*([_shortened(detail)] if detail else []), *stale),
    )
