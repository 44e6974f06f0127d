"""The watchlist model: watched symbols, their live prices and subscription status.

Ticks are buffered per symbol (the newest wins) by :meth:`WatchlistModel.push_tick` and flushed
into the rows on a 10 Hz timer; a flush reports the cells whose value changed, coalesced into
rectangles (one spanning them all once many rows changed), and formats no text (the view formats
the cells it paints), so a flush of thousands of ticks stays a few milliseconds. Adding and
removing rows emits :attr:`~WatchlistModel.symbols_added` and
:attr:`~WatchlistModel.symbols_removed`, which the app turns into subscribe and unsubscribe
messages; this model talks to no socket.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal

from backend.symbol_lists import WatchEntry
from desktop.tables.cell_ranges import coalesce_cells, spanning_rectangle
from desktop.tables.column_model import SORT_ROLE, ColumnTableModel
from desktop.tables.columns import column_index
from desktop.watchlist.columns import REJECTED, SUBSCRIBED, WATCHLIST_COLUMNS, WatchRow

FLUSH_INTERVAL_MS = 100  # 10 Hz
#: A flush that changed more rows than this reports one rectangle spanning them: a view repaints
#: only the part it shows either way, and a signal per row cost more than the repaint.
MAX_EXACT_ROWS = 64
_TICK_FIELDS = {  # market_data ``data`` field -> row attribute
    "ltp": "ltp",
    "change_percent": "change_percent",
    "volume": "volume",
    "timestamp": "last_tick",
}
_TICK_COLUMNS = {
    attribute: column_index(WATCHLIST_COLUMNS, attribute) for attribute in _TICK_FIELDS.values()
}
_CHANGED_ROLES = [Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ForegroundRole, SORT_ROLE]


class WatchlistModel(ColumnTableModel):
    """One row per watched ``(symbol, exchange)``, in the order they were added."""

    #: Entries just added (a list of :class:`WatchEntry`): subscribe them.
    symbols_added = Signal(list)
    #: Entries just removed (a list of :class:`WatchEntry`): unsubscribe them.
    symbols_removed = Signal(list)

    def __init__(self, flush_interval_ms: int = FLUSH_INTERVAL_MS, parent: Any = None) -> None:
        super().__init__(WATCHLIST_COLUMNS, parent)
        self._rows: list[WatchRow] = []
        self._index: dict[tuple[str, str], int] = {}
        self._pending: dict[tuple[str, str], Mapping[str, Any]] = {}
        self._timer = QTimer(self)
        self._timer.setInterval(flush_interval_ms)
        self._timer.timeout.connect(self.flush)
        self._timer.start()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self._rows)

    def row_object(self, row: int) -> WatchRow:
        return self._rows[row]

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def row_of(self, key: tuple[str, str]) -> int | None:
        return self._index.get(key)

    def entries(self) -> list[WatchEntry]:
        """The watched entries in row order."""
        return [row.entry for row in self._rows]

    def rows(self) -> list[WatchRow]:
        return list(self._rows)

    def add_entries(self, entries: Iterable[WatchEntry]) -> list[WatchEntry]:
        """Append the entries not watched yet (as pending); the ones added, also emitted."""
        added: list[WatchEntry] = []
        seen = set(self._index)
        for entry in entries:
            if entry.key not in seen:
                seen.add(entry.key)
                added.append(entry)
        if not added:
            return []
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(added) - 1)
        for entry in added:
            self._index[entry.key] = len(self._rows)
            self._rows.append(WatchRow.of(entry))
        self.endInsertRows()
        self.symbols_added.emit(added)
        return added

    def remove_rows(self, rows: Iterable[int]) -> list[WatchEntry]:
        """Remove the rows at these positions; the entries removed, also emitted."""
        doomed = sorted({row for row in rows if 0 <= row < len(self._rows)}, reverse=True)
        chunks: list[list[WatchEntry]] = []  # bottom-up, each a run of neighbouring rows
        position = 0
        while position < len(doomed):
            bottom = top = doomed[position]
            position += 1
            while position < len(doomed) and doomed[position] == top - 1:
                top = doomed[position]
                position += 1
            self.beginRemoveRows(QModelIndex(), top, bottom)
            chunks.append([row.entry for row in self._rows[top : bottom + 1]])
            del self._rows[top : bottom + 1]
            self.endRemoveRows()
        removed = [entry for chunk in reversed(chunks) for entry in chunk]
        if removed:
            self._index = {row.key: position for position, row in enumerate(self._rows)}
            for entry in removed:
                self._pending.pop(entry.key, None)
            self.symbols_removed.emit(removed)
        return removed

    def remove_keys(self, keys: Iterable[tuple[str, str]]) -> list[WatchEntry]:
        """Remove the rows of these ``(symbol, exchange)`` keys; the entries removed."""
        return self.remove_rows(self._index[key] for key in keys if key in self._index)

    def push_tick(self, message: Mapping[str, Any]) -> None:
        """Buffer a ``market_data`` message for the next flush; ticks of unwatched symbols are
        dropped, so the buffer never holds more than one tick per row."""
        data = message.get("data") or {}
        key = (
            str(message.get("symbol") or data.get("symbol") or ""),
            str(message.get("exchange") or data.get("exchange") or ""),
        )
        if key in self._index:
            previous = self._pending.get(key)
            self._pending[key] = {**previous, **data} if previous else data

    def flush(self) -> None:
        """Apply buffered ticks and report the changed cells."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        changes: dict[int, set[int]] = {}
        for key, data in pending.items():
            row = self._index.get(key)
            if row is not None:
                changed = self._apply_tick(self._rows[row], data)
                if changed:
                    changes[row] = changed
        self._report(changes)

    @staticmethod
    def _apply_tick(row: WatchRow, data: Mapping[str, Any]) -> set[int]:
        """Copy a tick's fields into ``row``; the columns whose value changed."""
        depth = data.get("depth")
        if depth is not None:
            row.depth = depth
        changed: set[int] = set()
        for field, attribute in _TICK_FIELDS.items():
            value = data.get(field)
            previous = getattr(row, attribute)
            if value is None or value == previous:
                continue
            if attribute == "ltp" and previous is not None:
                row.ltp_move = 1 if value > previous else -1
            setattr(row, attribute, value)
            changed.add(_TICK_COLUMNS[attribute])
        return changed

    def apply_subscribe_reply(self, reply: Mapping[str, Any]) -> None:
        """Mark rows subscribed (on their connection) or rejected (with the reason) from a
        ``subscribe`` reply's per-symbol entries."""
        changes: dict[int, set[int]] = {}
        for item in reply.get("subscriptions") or ():
            row = self._index.get((str(item.get("symbol")), str(item.get("exchange"))))
            if row is None:
                continue
            if item.get("status") == "success":
                changed = self._set_status(row, SUBSCRIBED, "", item.get("connection"))
            else:
                reason = str(item.get("message") or item.get("code") or "refused")
                changed = self._set_status(row, REJECTED, reason, None)
            if changed:
                changes[row] = changed
        self._report(changes)

    def _set_status(self, row: int, status: str, reason: str, connection: int | None) -> set[int]:
        """Set a row's subscription status; the columns whose text changed."""
        target = self._rows[row]
        before = self._texts(target)
        target.status, target.reason, target.connection = status, reason, connection
        return self._changed_columns(target, before)

    def _texts(self, row: WatchRow) -> list[str]:
        return [column.text(row) for column in self.columns]

    def _changed_columns(self, row: WatchRow, before: list[str]) -> set[int]:
        """The columns whose text differs from ``before`` (colour and sort follow the text)."""
        return {index for index, text in enumerate(self._texts(row)) if text != before[index]}

    def _report(self, changes: Mapping[int, set[int]]) -> None:
        if len(changes) > MAX_EXACT_ROWS:
            span = spanning_rectangle(changes)
            rectangles = [span] if span else []
        else:
            rectangles = coalesce_cells(changes)
        for top, bottom, left, right in rectangles:
            self.dataChanged.emit(self.index(top, left), self.index(bottom, right), _CHANGED_ROLES)
