"""The watchlist's sorting and filtering proxy: rows whose symbol, mode or status hold a text.

The filter reads each row object once (``EXCHANGE:SYMBOL``, the mode's name and the status as
the table shows them) rather than every cell, so typing into the filter box over thousands of
rows stays quick. Like sorting, it is applied when the text changes, not at every tick: a row
whose status changes keeps its place until the next change of the text.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel

from backend.instruments.symbol_lists import MODE_NAMES
from desktop.tables.column_model import SORT_ROLE
from desktop.watchlist.model import WatchlistModel


class WatchlistFilter(QSortFilterProxyModel):
    """Sorts ``model``'s rows by :data:`SORT_ROLE` and shows those matching :attr:`text`."""

    def __init__(self, model: WatchlistModel) -> None:
        super().__init__(model)
        self.watchlist = model
        self.text = ""
        self.setSourceModel(model)
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(False)

    def set_text(self, text: str) -> None:
        """Show only the rows matching ``text`` (every row for an empty one), case aside."""
        self.beginFilterChange()
        self.text = text.strip().casefold()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(
        self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex
    ) -> bool:
        if not self.text:
            return True
        row = self.watchlist.row_object(source_row)
        mode = MODE_NAMES.get(row.mode, "")
        return any(self.text in text.casefold() for text in (row.label, mode, row.status_text))
