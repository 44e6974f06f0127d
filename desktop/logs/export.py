"""Writing log records to a file: ``.log`` (one line each), ``.csv`` or ``.jsonl``.

A pure function of the records it is given: the dialog decides which records (all, or the current
filtered view) and where; this module only writes them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from desktop.logs.entry import LogEntry, full_time

EXPORT_FORMATS = {"log": "Log lines (*.log)", "csv": "CSV (*.csv)", "jsonl": "JSON Lines (*.jsonl)"}
CSV_HEADER = ("time", "level", "source", "logger", "connection", "message")


def default_export_name(now: datetime, fmt: str) -> str:
    """``feedpool-logs-20261125-153000.log`` for ``fmt`` ``log``."""
    return f"feedpool-logs-{now:%Y%m%d-%H%M%S}.{fmt}"


def format_of(path: Path) -> str:
    """The export format a file name asks for; ``ValueError`` for any other suffix."""
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"{path.name}: choose a .log, .csv or .jsonl file name")
    return fmt


def log_line(entry: LogEntry) -> str:
    """One record as one line; line breaks inside the message are written as ``\\n``."""
    message = entry.message.replace("\r\n", "\n").replace("\n", "\\n")
    return f"{full_time(entry.time)} {entry.level:<8} [{entry.source}] {message}"


def write_log_export(entries: Iterable[LogEntry], path: Path, fmt: str | None = None) -> int:
    """Write the records to ``path`` in ``fmt`` (default: from the suffix); the count written."""
    fmt = fmt or format_of(path)
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        if fmt == "csv":
            writer = csv.writer(handle)
            writer.writerow(CSV_HEADER)
        for entry in entries:
            if fmt == "log":
                handle.write(log_line(entry) + "\n")
            elif fmt == "csv":
                writer.writerow(
                    (
                        full_time(entry.time),
                        entry.level,
                        entry.source,
                        entry.logger,
                        "" if entry.connection is None else entry.connection,
                        entry.message,
                    )
                )
            else:
                handle.write(json.dumps(entry.as_dict(), ensure_ascii=False) + "\n")
            count += 1
    return count
