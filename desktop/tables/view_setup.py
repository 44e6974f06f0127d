"""Setting up a table view over a column table model, once."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QModelIndex
from PySide6.QtWidgets import QHeaderView, QTableView

from desktop.tables.cell_painter import ColumnCellPainter
from desktop.tables.column_model import ColumnTableModel, Index


def setup_table_view(
    view: QTableView,
    model: ColumnTableModel,
    to_source: Callable[[Index], QModelIndex] | None = None,
) -> None:
    """Fixed-height rows, initial column widths from the spec and the cells painted by a
    :class:`ColumnCellPainter`; ``to_source`` maps the view's indexes to ``model``'s when the view
    shows it through a proxy.

    Columns are never resized to their contents afterwards: that would measure every cell on
    every update. The last column stretches to fill the view.
    """
    char_width = view.fontMetrics().averageCharWidth()
    header = view.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setStretchLastSection(True)
    for index, column in enumerate(model.columns):
        view.setColumnWidth(index, column.width * char_width + 16)
    rows = view.verticalHeader()
    rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    rows.setDefaultSectionSize(view.fontMetrics().height() + 6)
    rows.hide()
    view.setWordWrap(False)
    view.setItemDelegate(ColumnCellPainter(model, to_source, view))
