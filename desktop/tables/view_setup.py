"""Setting up a table view over a column table model, once."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QModelIndex
from PySide6.QtWidgets import QHeaderView, QTableView

from desktop.tables.cell_painter import PADDING, ColumnCellPainter
from desktop.tables.column_model import ColumnTableModel, Index
from desktop.tables.columns import Column

#: Room for the sort arrow beside a title, and for the cell's padding and grid line.
SORT_ARROW, CELL_MARGIN = 16, 2 * PADDING + 2


def setup_table_view(
    view: QTableView,
    model: ColumnTableModel,
    to_source: Callable[[Index], QModelIndex] | None = None,
) -> None:
    """Fixed-height rows, initial column widths from the spec and the cells painted by a
    :class:`ColumnCellPainter`; ``to_source`` maps the view's indexes to ``model``'s when the view
    shows it through a proxy.

    A column starts as wide as its longest text (the spec's width in characters, measured in the
    font's widest digit, which is as wide as most capitals) or its title, with the sort arrow,
    whichever is wider. Columns are never resized to their contents afterwards: that would
    measure every cell on every update. The last column stretches to fill the view.
    """
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(True)
    for index, column in enumerate(model.columns):
        view.setColumnWidth(index, column_width(view, column))
    rows = view.verticalHeader()
    rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    rows.setDefaultSectionSize(view.fontMetrics().height() + 6)
    rows.hide()
    view.setWordWrap(False)
    view.setItemDelegate(ColumnCellPainter(model, to_source, view))


def column_width(view: QTableView, column: Column) -> int:
    """The width ``column`` starts at in ``view``: room for its longest text and its title."""
    text = view.fontMetrics().horizontalAdvance("0") * column.width
    title = view.horizontalHeader().fontMetrics().horizontalAdvance(column.title) + SORT_ARROW
    return max(text, title) + CELL_MARGIN
