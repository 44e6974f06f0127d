"""The log model: a bounded ring of log lines fed through a buffer flushed on a timer.

A record is shown a row per line of its message (:class:`LogLine`): a traceback or the backend's
last output, one record of tens of lines, reads as those lines, the record's time, level and
source on its first. Rows keep one height, so a view of thousands stays cheap. Filters and exports
work on whole records (:meth:`LogModel.entry` is a row's record).

:meth:`LogModel.append` only queues a record, so any thread may call it (the app's logging handler
does) and a burst of records costs the GUI thread one batch insert per flush instead of one per
record. When the ring is full, each flush first removes the oldest rows, then inserts the batch.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QTimer, Signal

from desktop.colours import LEVEL_COLOURS
from desktop.logs.entry import LogEntry, clock_time
from desktop.logs.ring_buffer import RingBuffer
from desktop.tables.column_model import ColumnTableModel
from desktop.tables.columns import Column

DEFAULT_CAPACITY = 100_000
FLUSH_INTERVAL_MS = 100  # 10 Hz


@dataclass(frozen=True, slots=True)
class LogLine:
    """Line ``number`` (from 0) of ``entry``'s message: what one row shows."""

    entry: LogEntry
    number: int
    text: str

    @property
    def first(self) -> bool:
        return self.number == 0

    @property
    def time(self) -> float | None:
        return self.entry.time if self.first else None

    @property
    def level(self) -> str:
        return self.entry.level if self.first else ""

    @property
    def source(self) -> str:
        return self.entry.source if self.first else ""


def lines_of(entry: LogEntry) -> list[LogLine]:
    """A record's rows: one per line of its message, at least one."""
    texts = entry.message.splitlines() or [""]
    return [LogLine(entry, number, text) for number, text in enumerate(texts)]


def _level_colour(line: LogLine) -> str | None:
    return LEVEL_COLOURS.get(line.entry.level)


def _whole_record(line: LogLine) -> str:
    """A row's tooltip: the logger and the whole message, however the row elides it."""
    return f"{line.entry.logger}\n{line.entry.message}" if line.entry.logger else line.entry.message


LOG_COLUMNS = (
    Column("time", "Time", width=12, fmt=clock_time, colour=_level_colour),
    Column("level", "Level", width=8, colour=_level_colour),
    Column("source", "Source", width=12, colour=_level_colour),
    Column("text", "Message", width=30, colour=_level_colour, tooltip=_whole_record),
)


class LogModel(ColumnTableModel):
    """The newest ``capacity`` log lines, oldest first."""

    #: Emitted after a flush put records into the model, with how many rows.
    flushed = Signal(int)
    #: Emitted when a flush brings a source not seen before (for the source filter's choices).
    source_seen = Signal(str)

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        flush_interval_ms: int = FLUSH_INTERVAL_MS,
        parent: Any = None,
    ) -> None:
        super().__init__(LOG_COLUMNS, parent)
        self._ring: RingBuffer[LogLine] = RingBuffer(capacity)
        # Never more than a ring's worth is pending: older records would be dropped anyway.
        self._pending: deque[LogEntry] = deque(maxlen=capacity)
        self._sources: set[str] = set()
        self._paused = False
        self._timer = QTimer(self)
        self._timer.setInterval(flush_interval_ms)
        self._timer.timeout.connect(self.flush)
        self._timer.start()

    @property
    def capacity(self) -> int:
        return self._ring.capacity

    @property
    def paused(self) -> bool:
        return self._paused

    def set_paused(self, paused: bool) -> None:
        """While paused, records wait in the buffer (still bounded) and the rows stay put."""
        self._paused = paused
        if not paused:
            self.flush()

    def sources(self) -> list[str]:
        return sorted(self._sources)

    def append(self, entry: LogEntry) -> None:
        """Queue a record for the next flush; safe from any thread."""
        self._pending.append(entry)

    def flush(self) -> None:
        """Move queued records into the ring, dropping the oldest rows past capacity."""
        if self._paused or not self._pending:
            return
        records = [self._pending.popleft() for _ in range(len(self._pending))]
        batch = [line for entry in records for line in lines_of(entry)][-self.capacity :]
        overflow = len(batch) - self._ring.room()
        if overflow > 0:
            self.beginRemoveRows(QModelIndex(), 0, overflow - 1)
            self._ring.drop_front(overflow)
            self.endRemoveRows()
        first = len(self._ring)
        self.beginInsertRows(QModelIndex(), first, first + len(batch) - 1)
        self._ring.extend(batch)
        self.endInsertRows()
        for source in {entry.source for entry in records} - self._sources:
            self._sources.add(source)
            self.source_seen.emit(source)
        self.flushed.emit(len(batch))

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self._ring)

    def row_object(self, row: int) -> LogLine:
        """The line in ``row``."""
        return self._ring[row]

    def entry(self, row: int) -> LogEntry:
        """The record ``row`` is a line of."""
        return self._ring[row].entry

    def entries(self) -> Iterator[LogEntry]:
        """Every record in the model, oldest first, each once."""
        return records_of(self._ring)


def records_of(lines: Iterable[LogLine]) -> Iterator[LogEntry]:
    """The records of consecutive ``lines``, each once (a record whose first lines have left the
    ring counts from its first line still held)."""
    last = None
    for line in lines:
        if line.entry is not last:
            last = line.entry
            yield last
