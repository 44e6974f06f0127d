"""The client API's statistics the backend publishes on the bus topic ``SYS.CLIENTS``.

The payload lists, under ``sessions``, each connected client: its number, address, when it
connected, whether it has authenticated, what it holds (``symbols``: ``[symbol, exchange, mode]``
each, taken as they are: a client of thousands sends them every second) and what was sent to it.
Missing fields read as zero or empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from desktop.stats.fields import int_field

Holding = tuple[str, str, int]  # symbol, exchange, mode


@dataclass(frozen=True, slots=True)
class ClientStats:
    """One client of the WebSocket API."""

    number: int
    peer: str
    connected_at: float | None
    authenticated: bool
    subscriptions: int
    sent: int
    queued: int
    conflated: int
    throttled: int
    symbols: tuple[Holding, ...] = ()


def parse_client(payload: Mapping[str, Any]) -> ClientStats:
    """One entry of ``sessions``; ``ValueError`` if a number in it is not a number, or a holding
    is not three values."""
    since = payload.get("connected_at")
    symbols = tuple(map(tuple, payload.get("symbols") or ()))
    if any(len(holding) != 3 for holding in symbols):
        raise ValueError("a holding is not [symbol, exchange, mode]")
    return ClientStats(
        number=int_field(payload, "client"),
        peer=str(payload.get("peer") or ""),
        connected_at=None if since is None else float(since),
        authenticated=bool(payload.get("authenticated")),
        subscriptions=int_field(payload, "subscriptions"),
        sent=int_field(payload, "sent"),
        queued=int_field(payload, "queued"),
        conflated=int_field(payload, "conflated"),
        throttled=int_field(payload, "throttled"),
        symbols=symbols,
    )


def parse_clients(payload: Mapping[str, Any]) -> list[ClientStats]:
    """The clients of a ``SYS.CLIENTS`` payload, in number order."""
    clients = (parse_client(entry) for entry in payload.get("sessions") or ())
    return sorted(clients, key=lambda client: client.number)
