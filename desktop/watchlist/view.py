"""The watchlist table: sortable, filterable, multi-select, with a menu for the selected rows, and
the place to drop, paste or delete symbols.

It shows a :class:`WatchlistModel` through a :class:`~desktop.watchlist.filter.WatchlistFilter`.
Clicking a header sorts the rows once; they keep their places while prices tick, until the next
click (re-sorting thousands of ticking rows at every flush would cost the window its
responsiveness, and rows would never stay still long enough to read). The right-click menu acts
on the selected rows: change their mode, remove them, ask the backend for them again, copy their
symbols, show one in detail. Removing and asking again go straight to the model (a removal is
logged in one line); a mode change, dropped files and dropped or pasted text are handed on as
signals, for the pane to import and summarise.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QModelIndex, QPoint, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
)
from PySide6.QtWidgets import QAbstractItemView, QMenu, QTableView, QWidget

from backend.instruments.symbol_lists import MODE_NAMES, WatchEntry
from desktop.tables.view_setup import setup_table_view
from desktop.watchlist.columns import SUBSCRIBED, WatchRow
from desktop.watchlist.filter import WatchlistFilter
from desktop.watchlist.importing import listed
from desktop.watchlist.model import WatchlistModel

log = logging.getLogger("feedpool.desktop.watchlist")


def removal_text(rows: Sequence[WatchRow]) -> str:
    """The log line of a removal: how many, which, and what they were."""
    statuses = Counter(row.status for row in rows)
    held = ", ".join(f"{count:,} {status}" for status, count in sorted(statuses.items()))
    noun = "symbol" if len(rows) == 1 else "symbols"
    names = listed([row.label for row in rows])
    return f"Removed {len(rows):,} {noun} from the watchlist: {names} ({held})"


class WatchlistView(QTableView):
    """A table over a :class:`WatchlistModel` that accepts files and text."""

    #: Local files dropped on the table (a list of :class:`~pathlib.Path`).
    files_dropped = Signal(list)
    #: Text dropped on the table or pasted into it.
    text_received = Signal(str)
    #: The current row changed: its ``(symbol, exchange)``, or ``None`` for no row.
    current_symbol_changed = Signal(object)
    #: The menu asked for the selected rows in a new mode (a list of :class:`WatchEntry`).
    modes_requested = Signal(list)
    #: The menu asked to show this row's ``(symbol, exchange)`` in detail (it is the current row).
    detail_requested = Signal(object)

    def __init__(self, model: WatchlistModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.watchlist = model
        self.proxy = WatchlistFilter(model)
        self.setModel(self.proxy)
        # Unsorted (the order symbols were added) until a header is clicked.
        self.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.setSortingEnabled(True)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.setDropIndicatorShown(False)
        setup_table_view(self, model, self.proxy.mapToSource)

        self.remove_action = self._action("Remove selected", self.remove_selected)
        self.remove_action.setShortcuts([QKeySequence.StandardKey.Delete, Qt.Key.Key_Backspace])
        self.paste_action = self._action(
            "Paste symbols", self.paste, QKeySequence.StandardKey.Paste
        )
        self.copy_action = self._action(
            "Copy symbol", self.copy_selected, QKeySequence.StandardKey.Copy
        )
        self.retry_action = self._action("Retry now", self.retry_selected)
        self.detail_action = self._action("Show in detail", self.show_selected_in_detail)
        self.mode_actions = {
            mode: self._action(name, lambda _=False, mode=mode: self.change_selected_modes(mode))
            for mode, name in MODE_NAMES.items()
        }
        self.addActions([self.remove_action, self.paste_action, self.copy_action])
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._show_context_menu)
        self.selectionModel().currentRowChanged.connect(self._current_row_changed)

    def _action(
        self,
        text: str,
        slot: Callable[..., None],
        shortcut: QKeySequence | QKeySequence.StandardKey | None = None,
    ) -> QAction:
        """An action of the table's (its shortcut works while the table has the focus)."""
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        action.triggered.connect(slot)
        return action

    def dataChanged(
        self, top_left: QModelIndex, bottom_right: QModelIndex, roles: Sequence[int] = ()
    ) -> None:
        """Repaint the changed cells in view: handed a range that reaches past the rows shown (a
        flush of thousands of rows), the table would repaint every cell it shows."""
        first = self.rowAt(0)
        if first < 0:
            return
        last = self.rowAt(self.viewport().height() - 1)
        if last < 0:
            last = self.proxy.rowCount() - 1
        top, bottom = max(top_left.row(), first), min(bottom_right.row(), last)
        if top <= bottom:
            super().dataChanged(
                self.proxy.index(top, top_left.column()),
                self.proxy.index(bottom, bottom_right.column()),
                roles,
            )

    def _current_row_changed(self, current: QModelIndex) -> None:
        if not current.isValid():
            self.current_symbol_changed.emit(None)
            return
        row = self.proxy.mapToSource(current).row()
        self.current_symbol_changed.emit(self.watchlist.row_object(row).key)

    def selected_source_rows(self) -> list[int]:
        """The model rows of the selected table rows."""
        return sorted(
            self.proxy.mapToSource(index).row() for index in self.selectionModel().selectedRows()
        )

    def _selected_rows(self) -> list[WatchRow]:
        return [self.watchlist.row_object(row) for row in self.selected_source_rows()]

    def remove_selected(self) -> None:
        rows = self._selected_rows()
        if rows:
            text = removal_text(rows)
            self.watchlist.remove_rows(self.selected_source_rows())
            log.info(text)

    def change_selected_modes(self, mode: int) -> None:
        """Ask for the selected rows in ``mode`` (those in another mode)."""
        changed = [
            WatchEntry(row.symbol, row.exchange, mode)
            for row in self._selected_rows()
            if row.mode != mode
        ]
        if changed:
            self.modes_requested.emit(changed)

    def retry_selected(self) -> None:
        """Ask the backend again for the selected rows it does not serve."""
        self.watchlist.retry(self.selected_source_rows())

    def copy_selected(self) -> None:
        """Copy the selected rows' ``EXCHANGE:SYMBOL``, a line each (pasting them adds them)."""
        labels = [row.label for row in self._selected_rows()]
        if labels:
            QGuiApplication.clipboard().setText("\n".join(labels))

    def show_selected_in_detail(self) -> None:
        """Make the first selected row the current one, which the detail pane follows."""
        rows = self.selectionModel().selectedRows()
        if not rows:
            return
        first = min(rows, key=lambda index: index.row())
        self.selectionModel().setCurrentIndex(first, QItemSelectionModel.SelectionFlag.NoUpdate)
        self.detail_requested.emit(
            self.watchlist.row_object(self.proxy.mapToSource(first).row()).key
        )

    def shows(self, keys: Iterable[tuple[str, str]]) -> bool:
        """Whether the filter lets every watched row of ``keys`` through."""
        positions = (self.watchlist.row_of(key) for key in keys)
        return all(
            self.proxy.mapFromSource(self.watchlist.index(position, 0)).isValid()
            for position in positions
            if position is not None
        )

    def reveal(self, keys: Iterable[tuple[str, str]]) -> None:
        """Select the rows of ``keys`` the filter shows, and scroll to the first: rows just added
        or changed are seen where they land."""
        positions = (self.watchlist.row_of(key) for key in keys)
        indexes = (
            self.proxy.mapFromSource(self.watchlist.index(p, 0)) for p in positions if p is not None
        )
        shown = sorted(index.row() for index in indexes if index.isValid())
        if not shown:
            return
        selection = QItemSelection()
        last_column = self.proxy.columnCount() - 1
        start = previous = shown[0]
        for row in [*shown[1:], None]:
            if row != previous + 1:
                selection.select(
                    self.proxy.index(start, 0), self.proxy.index(previous, last_column)
                )
                start = row
            previous = row
        self.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.executeDelayedItemsLayout()  # rows the filter has just let in have their places
        self.scrollTo(self.proxy.index(shown[0], 0), QAbstractItemView.ScrollHint.PositionAtCenter)

    def paste(self) -> None:
        text = QGuiApplication.clipboard().text()
        if text.strip():
            self.text_received.emit(text)

    def context_menu(self) -> QMenu:
        """The right-click menu, its actions enabled for what the selected rows allow."""
        rows = self._selected_rows()
        count = len(rows)
        self.remove_action.setText(f"Remove {count} selected" if count > 1 else "Remove selected")
        self.remove_action.setEnabled(count > 0)
        self.copy_action.setText("Copy symbols" if count > 1 else "Copy symbol")
        self.copy_action.setEnabled(count > 0)
        self.retry_action.setEnabled(any(row.status != SUBSCRIBED for row in rows))
        self.detail_action.setEnabled(count > 0)
        menu = QMenu(self)
        modes = menu.addMenu("Change mode")
        modes.setEnabled(count > 0)
        for mode, action in self.mode_actions.items():
            action.setCheckable(True)
            action.setChecked(count > 0 and all(row.mode == mode for row in rows))
            modes.addAction(action)
        menu.addActions([self.retry_action, self.copy_action, self.detail_action])
        menu.addSeparator()
        menu.addActions([self.remove_action, self.paste_action])
        return menu

    def _show_context_menu(self, position: QPoint) -> None:
        menu = self.context_menu()
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(self.viewport().mapToGlobal(position))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() or event.mimeData().hasText():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if event.mimeData().hasUrls() or event.mimeData().hasText():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        mime = event.mimeData()
        paths = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
        if paths:
            self.files_dropped.emit(paths)
        elif mime.hasText() and mime.text().strip():
            self.text_received.emit(mime.text())
        else:
            event.ignore()
            return
        event.acceptProposedAction()
