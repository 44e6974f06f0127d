"""Which log records a pane shows: a minimum level, one source (or all) and a text to find.

A record is shown or hidden whole: every line of it, as the model's rows hold them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel

from desktop.logs.entry import LEVELS, LogEntry
from desktop.logs.model import LogModel, records_of


class LogFilterProxy(QSortFilterProxyModel):
    """Filters a :class:`LogModel`; records keep their order."""

    def __init__(self, source: LogModel, parent: Any = None) -> None:
        super().__init__(parent)
        self._min_level = LEVELS["DEBUG"]
        self._source: str | None = None
        self._text = ""
        self.setSourceModel(source)

    def log_model(self) -> LogModel:
        model = self.sourceModel()
        assert isinstance(model, LogModel)
        return model

    def set_min_level(self, level: int) -> None:
        """Show records at ``level`` (a ``logging`` number) and above."""
        self.beginFilterChange()
        self._min_level = level
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_source(self, source: str | None) -> None:
        """Show only records of ``source``, or of every source for ``None``."""
        self.beginFilterChange()
        self._source = source or None
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_text(self, text: str) -> None:
        """Show only records whose message or logger holds ``text``, ignoring case."""
        self.beginFilterChange()
        self._text = text.strip().casefold()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def accepts(self, entry: LogEntry) -> bool:
        if entry.levelno < self._min_level:
            return False
        if self._source is not None and entry.source != self._source:
            return False
        return not self._text or (
            self._text in entry.message.casefold() or self._text in entry.logger.casefold()
        )

    def filterAcceptsRow(
        self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex
    ) -> bool:
        return self.accepts(self.log_model().entry(source_row))

    def visible_entries(self) -> Iterator[LogEntry]:
        """The records this proxy shows, in view order, each once."""
        model = self.log_model()
        rows = (self.mapToSource(self.index(row, 0)).row() for row in range(self.rowCount()))
        return records_of(model.row_object(row) for row in rows)
