"""What a backend says on stdout when it starts: a ready line, or the reason it cannot start.

A backend prints one JSON event line: ``{"event": "ready", "ws", "zmq", "tls_fingerprint",
"bus_public_key", "pid", "broker"}`` once everything listens, or ``{"event": "error", "code",
"message"}`` before it exits. No Qt here: the app's :class:`~desktop.link.process.BackendProcess`
and the self-test read these lines alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

READY_EVENT, ERROR_EVENT = "ready", "error"


@dataclass(frozen=True, slots=True)
class BackendEndpoints:
    """Where a ready backend serves (its WebSocket API and its bus) and what to trust there: its
    certificate's fingerprint (``wss://`` only) and its bus's public key (CURVE only)."""

    ws: str
    zmq: str
    pid: int
    broker: str = ""
    tls_fingerprint: str = ""
    bus_public_key: str = ""


def event_of(line: str | bytes) -> dict[str, Any] | None:
    """The event a stdout line carries, or ``None`` for a line that is no event."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "event" in event else None


def endpoints_of(event: dict[str, Any]) -> BackendEndpoints:
    """The endpoints of a ready event; ``ValueError`` if it lacks one."""
    try:
        return BackendEndpoints(
            str(event["ws"]),
            str(event["zmq"]),
            int(event["pid"]),
            str(event.get("broker", "")),
            str(event.get("tls_fingerprint") or ""),
            str(event.get("bus_public_key") or ""),
        )
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"its ready line is incomplete: {event}") from None


def start_failure(event: dict[str, Any]) -> str:
    """Why the backend cannot start, from its error event, for people."""
    return f"{event.get('message') or 'it cannot start'} ({event.get('code')})"
