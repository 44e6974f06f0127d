"""The pool statistics the backend publishes on the bus topic ``SYS.POOL``, as typed values.

The payload is the fields of ``ConnectionPool.get_stats()`` plus, per connection, its state, tick
rate and last-tick age. Missing fields read as zero or unknown so a partial payload still shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backend.feed import CONNECTED, CONNECTING, DOWN, RECONNECTING, SESSION_EXPIRED
from desktop.stats.fields import int_field

CONNECTION_STATES = (CONNECTING, CONNECTED, RECONNECTING, SESSION_EXPIRED, DOWN)


@dataclass(frozen=True, slots=True)
class ConnectionStats:
    """One pooled broker connection."""

    index: int
    symbols: int
    capacity: int
    state: str
    ticks_per_second: float
    last_tick_age_ms: int | None
    peak_symbols: int
    #: Ticks the connection did not publish: a newer one of the same subscription came with them.
    ticks_shed: int = 0
    #: Why the connection is in its state, as the broker said (empty while connected).
    reason: str = ""
    #: Times a silent feed was healed: subscribed again, or reconnected.
    feeds_healed: int = 0


@dataclass(frozen=True, slots=True)
class PoolStats:
    """The whole pool of one broker account."""

    broker: str
    user_id: str
    max_connections: int
    max_symbols_per_connection: int
    capacity: int
    total_symbols: int
    active_connections: int
    peak_symbols: int
    peak_connections: int
    utilisation_percent: float
    connections: tuple[ConnectionStats, ...]
    #: Why the account has no session with the broker now; empty while it has one.
    session_problem: str = ""

    @property
    def needs_login(self) -> bool:
        """Whether the trader must log in again: the broker ended the session."""
        return bool(self.session_problem) or any(
            c.state == SESSION_EXPIRED for c in self.connections
        )


def parse_connection_stats(payload: Mapping[str, Any]) -> ConnectionStats:
    """A connection entry of ``SYS.POOL``; ``ValueError`` if a number is not a number."""
    age = payload.get("last_tick_age_ms")
    return ConnectionStats(
        index=int_field(payload, "index"),
        symbols=int_field(payload, "symbols"),
        capacity=int_field(payload, "capacity"),
        state=str(payload.get("state") or "connecting"),
        ticks_per_second=float(payload.get("ticks_per_second") or 0.0),
        last_tick_age_ms=None if age is None else int(age),
        peak_symbols=int_field(payload, "peak_symbols"),
        ticks_shed=int_field(payload, "ticks_shed"),
        reason=str(payload.get("reason") or ""),
        feeds_healed=int_field(payload, "feeds_healed"),
    )


def parse_pool_stats(payload: Mapping[str, Any]) -> PoolStats:
    """A ``SYS.POOL`` payload; ``ValueError`` if a number is not a number."""
    connections = sorted(
        (parse_connection_stats(entry) for entry in payload.get("connections") or ()),
        key=lambda connection: connection.index,
    )
    return PoolStats(
        broker=str(payload.get("broker") or ""),
        user_id=str(payload.get("user_id") or ""),
        max_connections=int_field(payload, "max_connections"),
        max_symbols_per_connection=int_field(payload, "max_symbols_per_connection"),
        capacity=int_field(payload, "capacity"),
        total_symbols=int_field(payload, "total_symbols"),
        active_connections=int_field(payload, "active_connections"),
        peak_symbols=int_field(payload, "peak_symbols"),
        peak_connections=int_field(payload, "peak_connections"),
        utilisation_percent=float(payload.get("utilisation_percent") or 0.0),
        connections=tuple(connections),
        session_problem=str(payload.get("session_problem") or ""),
    )
