"""One log record as the log panes show it: time, level, source, message.

Records come from the bus topic ``SYS.LOG`` (the backend's loggers, each a
:class:`~backend.bus.messages.LogRecord`), from the backend's stderr
(the records the bus did not deliver) and from the app's own Python logging. The source is what a
trader filters by: ``pool``, ``proxy``, ``connection N``, ``simulator``, ``app``; it is derived
from the logger name and the connection index.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backend.bus.messages import LogRecord

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
_LEVEL_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL"}
APP_SOURCE = "app"
BACKEND_SOURCE = "backend"
ROOT_LOGGER = "feedpool"
BACKEND_LOGGER = "feedpool.backend"
#: A line of the backend's stderr log format,
#: ``%(asctime)s #%(sequence)d %(levelname)s %(name)s %(message)s`` (the number is optional).
_STDERR_RECORD = re.compile(
    r"(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (?:#(?P<sequence>\d+) )?"
    r"(?P<level>[A-Z]+) (?P<logger>\S+) (?P<message>.*)"
)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """A log record; ``time`` is epoch seconds; ``sequence`` is a backend record's number in its
    process, the same on stderr and on the bus."""

    time: float
    level: str
    source: str
    message: str
    logger: str = ""
    connection: int | None = None
    sequence: int | None = None

    @property
    def levelno(self) -> int:
        return LEVELS.get(self.level, LEVELS["INFO"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "level": self.level,
            "source": self.source,
            "logger": self.logger,
            "connection": self.connection,
            "message": self.message,
        }


def normalise_level(level: object) -> str:
    """An upper-case level name from ``LEVELS``; unknown names read as INFO."""
    name = str(level or "").strip().upper()
    name = _LEVEL_ALIASES.get(name, name)
    return name if name in LEVELS else "INFO"


def source_of(logger: str, connection: int | None) -> str:
    """The source a record is filtered by.

    A record about a connection is that connection's (``connection 2``); otherwise the part of the
    logger name below ``feedpool`` (``feedpool.pool.balancer`` -> ``pool``), or the top of a
    foreign logger's name (``websockets.server`` -> ``websockets``).
    """
    if connection is not None:
        return f"connection {connection}"
    parts = [part for part in logger.split(".") if part]
    if not parts:
        return BACKEND_SOURCE
    if parts[0] == ROOT_LOGGER:
        return parts[1] if len(parts) > 1 else BACKEND_SOURCE
    return parts[0]


def entry_from_bus(record: LogRecord) -> LogEntry:
    """A ``SYS.LOG`` message as an entry."""
    return LogEntry(
        time=record.time,
        level=normalise_level(record.level),
        source=source_of(record.logger, record.connection),
        message=record.message,
        logger=record.logger,
        connection=record.connection,
        sequence=record.sequence,
    )


def entry_from_output(line: str) -> LogEntry:
    """A line the backend wrote on stderr: a log record in its format, or any other text (a
    traceback line, say) as an INFO record of the backend."""
    match = _STDERR_RECORD.fullmatch(line)
    if match is None:
        return LogEntry(time.time(), "INFO", BACKEND_SOURCE, line, BACKEND_LOGGER)
    stamp = datetime.strptime(match["time"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return LogEntry(
        time=stamp,
        level=normalise_level(match["level"]),
        source=source_of(match["logger"], None),
        message=match["message"],
        logger=match["logger"],
        sequence=None if match["sequence"] is None else int(match["sequence"]),
    )


def clock_time(epoch: float) -> str:
    """Local wall-clock time with milliseconds: ``15:30:00.123``."""
    return datetime.fromtimestamp(epoch).strftime("%H:%M:%S.%f")[:-3]


def full_time(epoch: float) -> str:
    """Local date and time with milliseconds: ``2026-11-25 15:30:00.123``."""
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
