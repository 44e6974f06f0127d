"""A log pane: filter bar, pause button and a table that follows the newest record.

The table follows the tail while its scroll bar is at the bottom. Scrolling up stops following
(and rows dropped off the top of the ring no longer move what the user is reading); scrolling
back to the bottom follows again.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.logs.entry import LEVELS
from desktop.logs.filter import LogFilterProxy
from desktop.logs.model import LogModel
from desktop.tables.view_setup import setup_table_view

TEXT_FILTER_DELAY_MS = 250  # wait for a pause in typing before refiltering a large log
#: The level shown from the start: the pool's and the connections' news, not their chatter.
DEFAULT_LEVEL = LEVELS["INFO"]


class LogPane(QWidget):
    """Shows a :class:`LogModel` through its own :class:`LogFilterProxy`."""

    def __init__(self, model: LogModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.proxy = LogFilterProxy(model, self)
        self._following = True

        self.view = QTableView(self)
        self.view.setModel(self.proxy)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setAlternatingRowColors(True)
        setup_table_view(self.view, model, self.proxy.mapToSource)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._filter_bar())
        layout.addWidget(self.view)

        self.view.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        self.proxy.rowsInserted.connect(self._on_rows_inserted)
        self.proxy.rowsAboutToBeRemoved.connect(self._on_rows_about_to_be_removed)
        model.flushed.connect(self._show_count)
        self._show_count()

    def _filter_bar(self) -> QHBoxLayout:
        self.level_combo = QComboBox(self)
        for name, number in LEVELS.items():
            self.level_combo.addItem(name.capitalize(), number)
        self.level_combo.setToolTip("Show records at this level and above")
        self.level_combo.currentIndexChanged.connect(
            lambda: self.proxy.set_min_level(self.level_combo.currentData())
        )
        self.level_combo.setCurrentIndex(self.level_combo.findData(DEFAULT_LEVEL))

        self.source_combo = QComboBox(self)
        self.source_combo.addItem("All sources", None)
        self.source_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        for source in self.model.sources():
            self._add_source(source)
        self.model.source_seen.connect(self._add_source)
        self.source_combo.currentIndexChanged.connect(
            lambda: self.proxy.set_source(self.source_combo.currentData())
        )

        self.search_edit = QLineEdit(self)
        self.search_edit.setPlaceholderText("Find in messages")
        self.search_edit.setClearButtonEnabled(True)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(TEXT_FILTER_DELAY_MS)
        self._search_timer.timeout.connect(self.apply_search)
        self.search_edit.textChanged.connect(self._search_timer.start)

        self.pause_button = QToolButton(self)
        self.pause_button.setCheckable(True)
        self.pause_button.setText("Pause")
        self.pause_button.setToolTip("Hold new records back while you read")
        self.pause_button.toggled.connect(self.set_paused)

        self.count_label = QLabel(self)

        bar = QHBoxLayout()
        bar.addWidget(QLabel("Level", self))
        bar.addWidget(self.level_combo)
        bar.addWidget(self.source_combo)
        bar.addWidget(self.search_edit, 1)
        bar.addWidget(self.pause_button)
        bar.addWidget(self.count_label)
        return bar

    def is_following(self) -> bool:
        return self._following

    def set_paused(self, paused: bool) -> None:
        """Hold records back (``True``) or let them in again."""
        self.pause_button.setChecked(paused)
        self.pause_button.setText("Resume" if paused else "Pause")
        self.model.set_paused(paused)
        self._show_count()

    def apply_search(self) -> None:
        """Filter by the search box's text now, without waiting for typing to pause."""
        self._search_timer.stop()
        self.proxy.set_text(self.search_edit.text())
        self._show_count()

    def _add_source(self, source: str) -> None:
        names = [self.source_combo.itemText(i) for i in range(1, self.source_combo.count())]
        position = 1 + sum(1 for name in names if _source_order(name) < _source_order(source))
        self.source_combo.insertItem(position, source, source)

    def _on_scrolled(self, value: int) -> None:
        self._following = value >= self.view.verticalScrollBar().maximum()

    def _on_rows_inserted(self) -> None:
        if self._following:
            self.view.scrollToBottom()

    def _on_rows_about_to_be_removed(
        self, parent: QModelIndex | QPersistentModelIndex, first: int, last: int
    ) -> None:
        if self._following:
            return
        scroll_bar = self.view.verticalScrollBar()
        top = self.view.rowAt(0)
        if first <= top:
            # Keep the rows being read in place as older rows leave the top.
            removed_above = min(last, top) - first + 1
            scroll_bar.setValue(max(scroll_bar.value() - removed_above, 0))

    def _show_count(self) -> None:
        shown = self.proxy.rowCount()
        total = self.model.rowCount()
        text = f"{shown:,} of {total:,} lines" if shown != total else f"{total:,} lines"
        if self.model.paused:
            text += " (paused)"
        self.count_label.setText(text)


def _source_order(source: str) -> tuple[int, int, str]:
    """Connections in number order after the named sources."""
    kind, _, number = source.partition(" ")
    if kind == "connection" and number.isdigit():
        return (1, int(number), "")
    return (0, 0, source)
