"""The watchlist table: sortable, multi-select, and the place to drop, paste or delete symbols.

It shows a :class:`WatchlistModel` through a sorting proxy. Clicking a header sorts the rows
once; they keep their places while prices tick, until the next click (re-sorting thousands of
ticking rows at every flush would cost the window its responsiveness, and rows would never stay
still long enough to read). Removing goes straight to the model; dropped files and dropped or
pasted text are handed on as signals, for the pane to import.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QModelIndex, QPoint, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
)
from PySide6.QtWidgets import QAbstractItemView, QMenu, QTableView, QWidget

from desktop.tables.column_model import SORT_ROLE
from desktop.tables.view_setup import setup_table_view
from desktop.watchlist.model import WatchlistModel


class WatchlistView(QTableView):
    """A table over a :class:`WatchlistModel` that accepts files and text."""

    #: Local files dropped on the table (a list of :class:`~pathlib.Path`).
    files_dropped = Signal(list)
    #: Text dropped on the table or pasted into it.
    text_received = Signal(str)
    #: The current row changed: its ``(symbol, exchange)``, or ``None`` for no row.
    current_symbol_changed = Signal(object)

    def __init__(self, model: WatchlistModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.watchlist = model
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setDynamicSortFilter(False)
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

        self.remove_action = QAction("Remove selected", self)
        self.remove_action.setShortcuts([QKeySequence.StandardKey.Delete, Qt.Key.Key_Backspace])
        self.remove_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.remove_action.triggered.connect(self.remove_selected)
        self.paste_action = QAction("Paste symbols", self)
        self.paste_action.setShortcut(QKeySequence.StandardKey.Paste)
        self.paste_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.paste_action.triggered.connect(self.paste)
        self.addActions([self.remove_action, self.paste_action])
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._show_context_menu)
        self.selectionModel().currentRowChanged.connect(self._current_row_changed)

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

    def remove_selected(self) -> None:
        self.watchlist.remove_rows(self.selected_source_rows())

    def paste(self) -> None:
        text = QGuiApplication.clipboard().text()
        if text.strip():
            self.text_received.emit(text)

    def context_menu(self) -> QMenu:
        """The right-click menu, with the remove action enabled only when rows are selected."""
        count = len(self.selectionModel().selectedRows())
        self.remove_action.setEnabled(count > 0)
        self.remove_action.setText(f"Remove {count} selected" if count > 1 else "Remove selected")
        menu = QMenu(self)
        menu.addAction(self.remove_action)
        menu.addAction(self.paste_action)
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
