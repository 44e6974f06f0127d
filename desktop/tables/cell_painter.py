"""Painting a column table's cells straight from its row objects.

A view paints a cell by asking the model for half a dozen roles, and with a Python model each ask
crosses the binding: for a watchlist ticking at the open that was most of every repaint. This
delegate reads the row object and its :class:`~desktop.tables.columns.Column` once per cell and
draws the text itself; the model's ``data()`` still answers everyone else (tooltips, sorting,
accessibility, tests).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from desktop.tables.column_model import ALIGNMENTS, ColumnTableModel, Index

#: Room between a cell's border and its text, in pixels, each side.
PADDING = 4
# Flags as plain ints: a Python enum's ``&`` costs microseconds, twice in every cell.
_SELECTED = QStyle.StateFlag.State_Selected.value
_STRIPED = QStyleOptionViewItem.ViewItemFeature.Alternate.value
_STRIPE = QStyle.PrimitiveElement.PE_PanelItemViewRow
_BACKGROUND = QStyle.PrimitiveElement.PE_PanelItemViewItem
_TEXT = QPalette.ColorRole.Text
_SELECTED_TEXT = QPalette.ColorRole.HighlightedText
_ELIDE = Qt.TextElideMode.ElideRight


class ColumnCellPainter(QStyledItemDelegate):
    """Paints the cells of ``model`` shown in a view; ``to_source`` maps the view's index to the
    model's (a proxy's ``mapToSource``), or is ``None`` when the view shows the model itself."""

    def __init__(
        self,
        model: ColumnTableModel,
        to_source: Callable[[Index], QModelIndex] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._model = model
        self._to_source = to_source

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        source = self._to_source(index) if self._to_source else index
        column = self._model.columns[source.column()]
        row = self._model.row_object(source.row())
        selected = bool(option.state.value & _SELECTED)
        widget = option.widget
        if widget is not None and (selected or option.features.value & _STRIPED):
            # The row's stripe and the selection, as the style draws them; a plain cell has none.
            style = widget.style()
            style.drawPrimitive(_STRIPE, option, painter, widget)
            style.drawPrimitive(_BACKGROUND, option, painter, widget)
        if selected:
            painter.setPen(option.palette.color(_SELECTED_TEXT))
        else:
            colour = column.colour_of(row)
            painter.setPen(self._model.colour(colour) if colour else option.palette.color(_TEXT))
        area = option.rect.adjusted(PADDING, 0, -PADDING, 0)
        text = column.text(row)
        if text:
            text = option.fontMetrics.elidedText(text, _ELIDE, area.width())
            painter.drawText(area, ALIGNMENTS[column.align], text)
