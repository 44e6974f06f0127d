"""Bus messages for the desktop tests, as the backend builds them: every field set, the ones a
test does not care about to a quiet default."""

from __future__ import annotations

from typing import Any

from backend.bus.messages import (
    AccountStats,
    ClientsStats,
    ClientStats,
    ConnectionStats,
    LogRecord,
    PoolStats,
    SymbolsMoved,
)

NOW = 1_764_069_731.0


def connection_stats(index: int, **fields: Any) -> ConnectionStats:
    """Connection ``index`` of a ``SYS.POOL``: connected, empty, no ticks yet."""
    quiet = {
        "symbols": 0,
        "capacity": 1000,
        "state": "connected",
        "reason": "",
        "ticks_per_second": 0.0,
        "ticks": 0,
        "ticks_shed": 0,
        "ticks_dropped": 0,
        "feeds_healed": 0,
        "last_tick_age_ms": None,
        "peak_symbols": 0,
    }
    return ConnectionStats(index=index, **{**quiet, **fields})


def account_stats(name: str, broker: str, **fields: Any) -> AccountStats:
    """A broker account of a ``SYS.POOL``: serving, empty, nothing moved."""
    quiet = {
        "user_id": name.upper(),
        "serving": True,
        "session_problem": "",
        "capacity": 3000,
        "symbols": 0,
        "borrowed": 0,
        "lent": 0,
        "failed_over": 0,
        "returned": 0,
        "displaced": 0,
    }
    return AccountStats(name=name, broker=broker, **{**quiet, **fields})


def symbols_moved(
    kind: str, source: str, target: str, *symbols: str, **fields: Any
) -> SymbolsMoved:
    """A ``SYS.MOVES`` batch of ``symbols`` (``EXCHANGE:SYMBOL``) moved from ``source`` to
    ``target``."""
    quiet = {"time": NOW, "reason": ""}
    return SymbolsMoved(
        kind=kind,
        from_account=source,
        to_account=target,
        symbols=list(symbols),
        **{**quiet, **fields},
    )


def pool_stats(*connections: ConnectionStats, **fields: Any) -> PoolStats:
    """A ``SYS.POOL`` of ``connections``: the simulator's pool of three of 1,000."""
    quiet = {
        "time": NOW,
        "broker": "simulator",
        "user_id": "FEEDPOOL",
        "max_connections": 3,
        "max_symbols_per_connection": 1000,
        "capacity": 3000,
        "total_symbols": sum(c.symbols for c in connections),
        "active_connections": len(connections),
        "peak_symbols": 0,
        "peak_connections": len(connections),
        "utilisation_percent": 0.0,
        "session_problem": "",
    }
    return PoolStats(connections=list(connections), **{**quiet, **fields})


def client_stats(number: int, peer: str, symbols: list[tuple[str, str, int]]) -> ClientStats:
    """A client of a ``SYS.CLIENTS`` holding ``symbols``."""
    return ClientStats(
        client=number,
        peer=peer,
        connected_at=NOW,
        authenticated=True,
        subscriptions=len(symbols),
        symbols=symbols,
        sent=1234,
        queued=0,
        conflated=5,
        throttled=0,
    )


def clients_stats(*sessions: ClientStats) -> ClientsStats:
    """A ``SYS.CLIENTS`` listing ``sessions``."""
    return ClientsStats(
        url="ws://127.0.0.1:8765",
        clients=len(sessions),
        subscriptions=sum(s.subscriptions for s in sessions),
        ticks_received=0,
        ticks_malformed=0,
        refused_connections=0,
        failed_authentications=0,
        delayed_authentications=0,
        malformed_messages=0,
        server_errors=0,
        sessions=list(sessions),
        tasks=12,
    )


def log_record(message: str, **fields: Any) -> LogRecord:
    """A ``SYS.LOG`` record of the pool's logger."""
    quiet = {
        "time": NOW,
        "level": "INFO",
        "logger": "feedpool.pool",
        "connection": None,
        "sequence": None,
    }
    return LogRecord(message=message, **{**quiet, **fields})
