"""The watchlist model: watched symbols, their live prices and subscription status.

Ticks wait per row (the newest wins) until the row is read: :meth:`WatchlistModel.push_frame`
keeps a ``market_data`` frame as it came off the socket, recognised as a row's by its first bytes
(:func:`~backend.proxy.frames.frame_prefix`), and :meth:`WatchlistModel.push_tick` a decoded
message. A frame is decoded only when its row is read, so with thousands of rows only the few in
view are decoded at every repaint, whatever the tick rate. A 10 Hz timer flushes: a few rows
that ticked are applied at once and exactly their changed cells reported; past
:data:`MAX_EXACT_ROWS` one rectangle spans the waiting rows' tick columns, and a view repaints
(and so reads) only the part it shows. No text is formatted here (the view formats the cells it
paints). Adding rows or changing their mode emits :attr:`~WatchlistModel.symbols_added`, removing
them :attr:`~WatchlistModel.symbols_removed`, and asking again for rows the backend has not served
:attr:`~WatchlistModel.subscribe_again`: the app turns these into subscribe and unsubscribe
messages; this model talks to no socket.

The rows are the trader's priority order: they are asked for in it, so the backend serves the
first that fit (:mod:`desktop.watchlist.room` says when the rows waiting for room are asked for
again). A subscribe reply sets each row's status (:meth:`WatchlistModel.apply_subscribe_reply`),
symbols moved between broker accounts (``SYS.MOVES``) their account
(:meth:`WatchlistModel.apply_moves`); :meth:`WatchlistModel.mark_stale` sets their stale marks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, QTimer, Signal

from backend.bus.messages import SymbolsMoved
from backend.feed import DEPTH, DISPLACED, FAILOVER, MAX_CAPACITY_REACHED
from backend.instruments.symbol_lists import WatchEntry
from backend.proxy.frames import DATA_KEY, frame_prefix
from desktop.tables.cell_ranges import coalesce_cells, spanning_rectangle
from desktop.tables.column_model import SORT_ROLE, ColumnTableModel
from desktop.tables.columns import column_index
from desktop.watchlist.columns import (
    PENDING,
    REJECTED,
    SUBSCRIBED,
    WAITING,
    WAITING_ACCOUNT,
    WATCHLIST_COLUMNS,
    WatchRow,
)

log = logging.getLogger("feedpool.desktop.watchlist")

FLUSH_INTERVAL_MS = 100  # 10 Hz
#: A flush of more waiting rows than this reports one rectangle spanning them: a view repaints
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
_TICK_LEFT, _TICK_RIGHT = min(_TICK_COLUMNS.values()), max(_TICK_COLUMNS.values())
_LTP_COLUMN = _TICK_COLUMNS["ltp"]
_STATUS_COLUMN = column_index(WATCHLIST_COLUMNS, "status")
#: The cells a stale mark changes: the prices' colour and the status.
_STALE_COLUMNS = {*range(_TICK_LEFT, _TICK_RIGHT + 1), _STATUS_COLUMN}
#: The tick fields copied as they are: field, row attribute, column.
_PLAIN_FIELDS = tuple(
    (field, attribute, _TICK_COLUMNS[attribute])
    for field, attribute in _TICK_FIELDS.items()
    if attribute != "ltp"
)
_CHANGED_ROLES = [Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ForegroundRole, SORT_ROLE]
_DATA_END = len(DATA_KEY)
#: A row's waiting tick: a frame as received or a decoded ``data`` object, and when it came.
Pending = tuple[bytes | Mapping[str, Any], float]


def tick_data(tick: bytes | Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ``data`` of a waiting tick, a frame decoded; ``None`` for a frame that is not JSON."""
    if not isinstance(tick, bytes):
        return tick
    try:
        data = orjson.loads(tick).get("data")
    except orjson.JSONDecodeError:
        log.warning("Ignored a tick that is not JSON")
        return None
    return data if isinstance(data, dict) else None


class WatchlistModel(ColumnTableModel):
    """One row per watched ``(symbol, exchange)``, in the order they were added."""

    #: Entries just added, or given a new mode (a list of :class:`WatchEntry`, in row order):
    #: subscribe them (at that mode, letting go of the old one), and save the watchlist.
    symbols_added = Signal(list)
    #: Entries just removed (a list of :class:`WatchEntry`): unsubscribe them.
    symbols_removed = Signal(list)
    #: Entries to ask the backend for again (a list of :class:`WatchEntry`, in row order): rows
    #: waiting for room when room frees, or retried by hand.
    subscribe_again = Signal(list)
    #: A subscribe reply was applied: how many of its rows were refused for capacity.
    answered = Signal(int)

    def __init__(self, flush_interval_ms: int = FLUSH_INTERVAL_MS, parent: Any = None) -> None:
        super().__init__(WATCHLIST_COLUMNS, parent)
        self._rows: list[WatchRow] = []
        self._index: dict[tuple[str, str], int] = {}
        #: Each row's :func:`frame_prefix`, in row order, and the row of each.
        self._prefixes: list[bytes] = []
        self._by_prefix: dict[bytes, int] = {}
        #: The rows whose newest tick is not applied yet, by position.
        self._pending: dict[int, Pending] = {}
        #: A tick has come since the last flush.
        self._fresh = False
        #: Told each tick as it is applied: its ``data`` and when it was received (epoch seconds).
        self.observe_tick: Callable[[Mapping[str, Any], float], None] = lambda data, received: None
        self._timer = QTimer(self)
        self._timer.setInterval(flush_interval_ms)
        self._timer.timeout.connect(self.flush)
        self._timer.start()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self._rows)

    def row_object(self, row: int) -> WatchRow:
        """The row at position ``row``, its newest tick applied."""
        if row in self._pending:
            self._apply_pending(row)
        return self._rows[row]

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def row_of(self, key: tuple[str, str]) -> int | None:
        return self._index.get(key)

    def entries(self) -> list[WatchEntry]:
        """The watched entries in row order."""
        return [row.entry for row in self._rows]

    def modes(self) -> dict[tuple[str, str], int]:
        """Each watched ``(symbol, exchange)``'s mode."""
        return {row.key: row.mode for row in self._rows}

    def statuses(self, keys: Iterable[tuple[str, str]]) -> list[str]:
        """The status of each of ``keys`` still watched."""
        return [self._rows[self._index[key]].status for key in keys if key in self._index]

    def rows(self) -> list[WatchRow]:
        """Every row, each with its newest tick applied."""
        for position in list(self._pending):
            self._apply_pending(position)
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
            prefix = frame_prefix(entry.symbol, entry.exchange, entry.mode)
            self._index[entry.key] = self._by_prefix[prefix] = len(self._rows)
            self._rows.append(WatchRow.of(entry))
            self._prefixes.append(prefix)
        self.endInsertRows()
        self.symbols_added.emit(added)
        return added

    def remove_rows(self, rows: Iterable[int]) -> list[WatchEntry]:
        """Remove the rows at these positions; the entries removed, also emitted."""
        doomed = sorted({row for row in rows if 0 <= row < len(self._rows)}, reverse=True)
        chunks: list[list[WatchEntry]] = []  # bottom-up, each a run of neighbouring rows
        # Views read rows while they are removed: no waiting tick may be applied by position then.
        waiting = {self._rows[row].key: tick for row, tick in self._pending.items()}
        self._pending = {}
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
            del self._prefixes[top : bottom + 1]
            self.endRemoveRows()
        removed = [entry for chunk in reversed(chunks) for entry in chunk]
        if removed:
            self._index = {row.key: position for position, row in enumerate(self._rows)}
            self._by_prefix = {prefix: row for row, prefix in enumerate(self._prefixes)}
        self._pending = {self._index[key]: tick for key, tick in waiting.items() if key in self}
        if removed:
            self.symbols_removed.emit(removed)
        return removed

    def remove_keys(self, keys: Iterable[tuple[str, str]]) -> list[WatchEntry]:
        """Remove the rows of these ``(symbol, exchange)`` keys; the entries removed."""
        return self.remove_rows(self._index[key] for key in keys if key in self._index)

    def change_modes(self, entries: Iterable[WatchEntry]) -> list[WatchEntry]:
        """Give each watched row of ``entries`` the entry's mode, in its place, pending until
        the backend answers; the entries changed, also emitted by :attr:`symbols_added`."""
        changes: dict[int, set[int]] = {}
        for entry in entries:
            position = self._index.get(entry.key)
            if position is None or self._rows[position].mode == entry.mode:
                continue
            row = self._rows[position]
            before = self._texts(row)
            del self._by_prefix[self._prefixes[position]]
            prefix = frame_prefix(entry.symbol, entry.exchange, entry.mode)
            self._prefixes[position] = prefix
            self._by_prefix[prefix] = position
            row.mode, row.status, row.reason = entry.mode, PENDING, ""
            if entry.mode != DEPTH:
                row.depth = None
            changes[position] = self._changed_columns(row, before)
        self._report(changes)
        changed = [self._rows[position].entry for position in sorted(changes)]
        if changed:
            self.symbols_added.emit(changed)
        return changed

    def retry(self, positions: Iterable[int]) -> list[WatchEntry]:
        """Ask the backend again for the rows at ``positions`` that it does not serve; the
        entries asked for, also emitted by :attr:`subscribe_again`."""
        rows = [
            self._rows[position]
            for position in sorted(set(positions))
            if 0 <= position < len(self._rows) and self._rows[position].status != SUBSCRIBED
        ]
        for row in rows:
            row.asked = True
        entries = [row.entry for row in rows]
        if entries:
            self.subscribe_again.emit(entries)
        return entries

    def retry_waiting(self, room: int) -> list[WatchEntry]:
        """Ask again for the first rows waiting for room, as many as ``room`` less those
        already asked for again; the entries asked for."""
        waiting = [n for n, row in enumerate(self._rows) if row.status == WAITING]
        asked = sum(self._rows[n].asked for n in waiting)
        fresh = [n for n in waiting if not self._rows[n].asked]
        return self.retry(fresh[: max(room - asked, 0)])

    def mark_stale(self, reason_of: Callable[[WatchRow], str]) -> int:
        """Set each row's stale mark to ``reason_of(row)`` and report the rows whose mark
        changed; how many rows are stale."""
        changes: dict[int, set[int]] = {}
        stale = 0
        for position, row in enumerate(self._rows):
            reason = reason_of(row)
            if reason != row.stale:
                row.stale = reason
                changes[position] = _STALE_COLUMNS
            stale += bool(reason)
        self._report(changes)
        return stale

    def push_frame(self, frame: bytes) -> bool:
        """Keep a ``market_data`` frame, undecoded, for its row if it begins with a watched row's
        :func:`frame_prefix`; ``False`` (nothing kept) for any other frame."""
        position = self._by_prefix.get(frame[: frame.find(DATA_KEY) + _DATA_END])
        if position is None:
            return False
        now = time.time()
        self._pending[position] = (frame, now)
        self._rows[position].heard = now
        self._fresh = True
        return True

    def push_tick(self, message: Mapping[str, Any]) -> None:
        """Keep a decoded ``market_data`` message for its row, its fields over those of the tick
        waiting there; ticks of unwatched symbols are dropped."""
        data = message.get("data") or {}
        key = (
            str(message.get("symbol") or data.get("symbol") or ""),
            str(message.get("exchange") or data.get("exchange") or ""),
        )
        position = self._index.get(key)
        if position is not None:
            previous = self._pending.get(position)
            if previous is not None:
                data = {**(tick_data(previous[0]) or {}), **data}
            now = time.time()
            self._pending[position] = (data, now)
            self._rows[position].heard = now
            self._fresh = True

    def flush(self) -> None:
        """Report the rows that ticked since the last flush: up to :data:`MAX_EXACT_ROWS` waiting
        rows are applied and their changed cells reported; more, one rectangle spans them."""
        if not self._fresh:
            return
        self._fresh = False
        if len(self._pending) > MAX_EXACT_ROWS:
            top, bottom = min(self._pending), max(self._pending)
            self.dataChanged.emit(
                self.index(top, _TICK_LEFT), self.index(bottom, _TICK_RIGHT), _CHANGED_ROLES
            )
            return
        changes: dict[int, set[int]] = {}
        for position in list(self._pending):
            changed = self._apply_pending(position)
            if changed:
                changes[position] = changed
        self._report(changes)

    def _apply_pending(self, position: int) -> set[int]:
        """Apply the tick waiting for the row at ``position``; the columns whose value changed."""
        tick, received = self._pending.pop(position)
        data = tick_data(tick)
        if data is None:
            return set()
        self.observe_tick(data, received)
        return self._apply_tick(self._rows[position], data)

    @staticmethod
    def _apply_tick(row: WatchRow, data: Mapping[str, Any]) -> set[int]:
        """Copy a tick's fields into ``row``; the columns whose value changed."""
        depth = data.get("depth")
        if depth is not None:
            row.depth = depth
        changed: set[int] = set()
        ltp, previous = data.get("ltp"), row.ltp
        if ltp is not None and ltp != previous:
            if previous is not None:
                row.ltp_move = 1 if ltp > previous else -1
            row.ltp = ltp
            changed.add(_LTP_COLUMN)
        for field, attribute, column in _PLAIN_FIELDS:
            value = data.get(field)
            if value is not None and value != getattr(row, attribute):
                setattr(row, attribute, value)
                changed.add(column)
        return changed

    def apply_subscribe_reply(self, reply: Mapping[str, Any]) -> None:
        """Mark rows subscribed (on their connection), waiting for room (refused for capacity)
        or rejected (with the reason) from a ``subscribe`` reply's per-symbol entries; a success
        for a mode the row no longer has is not its answer."""
        changes: dict[int, set[int]] = {}
        over_capacity = 0
        now = time.time()
        for item in reply.get("subscriptions") or ():
            position = self._index.get((str(item.get("symbol")), str(item.get("exchange"))))
            if position is None:
                continue
            row = self._rows[position]
            before = self._texts(row)
            if item.get("status") == "success":
                if item.get("mode") != row.mode:
                    continue
                row.status, row.reason, row.connection = SUBSCRIBED, "", item.get("connection")
                row.account, row.home = str(item.get("account") or ""), ""
                row.subscribed_at = now
            else:
                code = item.get("code")
                over_capacity += code == MAX_CAPACITY_REACHED
                row.status = WAITING if code == MAX_CAPACITY_REACHED else REJECTED
                row.reason = str(item.get("message") or code or "refused")
                row.connection, row.account, row.home = None, "", ""
            row.asked = False
            changed = self._changed_columns(row, before)
            if changed:
                changes[position] = changed
        self._report(changes)
        self.answered.emit(over_capacity)

    def apply_moves(self, moved: SymbolsMoved) -> int:
        """Follow symbols the backend moved between accounts: a failover puts a row on the
        account and connection now carrying it, borrowed; a return puts it back on its own; a
        displaced row waits for its own account (:meth:`accounts_serving` ends the wait), with
        the reason. How many rows moved."""
        changes: dict[int, set[int]] = {}
        now = time.time()
        connections = moved.connections or [0] * len(moved.symbols)
        for name, connection in zip(moved.symbols, connections, strict=True):
            exchange, _, symbol = name.partition(":")
            position = self._index.get((symbol, exchange))
            if position is None:
                continue
            row = self._rows[position]
            before = self._texts(row)
            row.connection = connection or None
            if moved.kind == DISPLACED:
                row.status, row.reason, row.account = WAITING_ACCOUNT, moved.reason, ""
                row.home = moved.to_account
            else:
                row.status, row.reason, row.account = SUBSCRIBED, "", moved.to_account
                row.home = (row.home or moved.from_account) if moved.kind == FAILOVER else ""
                row.subscribed_at = now
            changed = self._changed_columns(row, before)
            changes[position] = changed
        self._report({position: cells for position, cells in changes.items() if cells})
        return len(changes)

    def accounts_serving(self, serving: set[str]) -> int:
        """The accounts named in ``serving`` serve again: their rows waiting for them (displaced
        while they could not) are carried by them. How many rows changed."""
        changes: dict[int, set[int]] = {}
        for position, row in enumerate(self._rows):
            if row.status == WAITING_ACCOUNT and row.home in serving:
                before = self._texts(row)
                row.status, row.reason, row.account, row.home = SUBSCRIBED, "", row.home, ""
                changes[position] = self._changed_columns(row, before)
        self._report({position: cells for position, cells in changes.items() if cells})
        return len(changes)

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
