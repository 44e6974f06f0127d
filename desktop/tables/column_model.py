"""A read-only table model driven by a :class:`~desktop.tables.columns.Column` spec.

Subclasses say how many rows there are and which object a row shows; the column spec does the
rest: display text, alignment, colour, tooltip and a sort value under :data:`SORT_ROLE`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from desktop.tables.columns import Column

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ALIGNMENTS = {
    "left": Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
    "right": Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
    "center": Qt.AlignmentFlag.AlignCenter,
}
_ROLES = frozenset(
    {
        Qt.ItemDataRole.DisplayRole,
        Qt.ItemDataRole.ForegroundRole,
        Qt.ItemDataRole.TextAlignmentRole,
        Qt.ItemDataRole.ToolTipRole,
        SORT_ROLE,
    }
)
Index = QModelIndex | QPersistentModelIndex


class ColumnTableModel(QAbstractTableModel):
    """Cells of row objects, as the column spec describes them."""

    def __init__(self, columns: Sequence[Column], parent: Any = None) -> None:
        super().__init__(parent)
        self.columns = tuple(columns)
        self._colours: dict[str, QColor] = {}

    def row_object(self, row: int) -> Any:
        """The object shown in ``row``."""
        raise NotImplementedError

    def columnCount(self, parent: Index | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self.columns)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.columns):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.columns[section].title
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.columns[section].about or None
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        # A view asks for several roles per painted cell; the others are answered at once.
        if role not in _ROLES or not index.isValid():
            return None
        column = self.columns[index.column()]
        row = self.row_object(index.row())
        if role == Qt.ItemDataRole.DisplayRole:
            return column.text(row)
        if role == Qt.ItemDataRole.ForegroundRole:
            colour = column.colour_of(row)
            return self.colour(colour) if colour else None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return ALIGNMENTS[column.align]
        if role == Qt.ItemDataRole.ToolTipRole:
            return column.tooltip_of(row)
        if role == SORT_ROLE:
            return column.raw(row)
        return None

    def colour(self, name: str) -> QColor:
        """The colour ``#rrggbb``, made once."""
        colour = self._colours.get(name)
        if colour is None:
            colour = self._colours[name] = QColor(name)
        return colour
