"""The best-five book of a Depth symbol: five asks above five bids, the spread between them.

Asks are listed from the highest down to the best (lowest) ask, bids from the best (highest)
down, so the two best prices meet in the middle as on a trading terminal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from desktop.colours import PRICE_DOWN, PRICE_UP

LEVELS = 5
ASK, BID = "Ask", "Bid"
BOOK_COLUMNS = ("Price", "Quantity", "Orders")
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


def book_rows(depth: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """The book's rows top to bottom: ``(side, level)``, asks above bids."""
    asks: Sequence[Mapping[str, Any]] = depth.get("sell") or ()
    bids: Sequence[Mapping[str, Any]] = depth.get("buy") or ()
    return [(ASK, level) for level in reversed(asks[:LEVELS])] + [
        (BID, level) for level in bids[:LEVELS]
    ]


class BookTable(QTableWidget):
    """Shows one ``depth`` object of a Depth tick."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(2 * LEVELS, len(BOOK_COLUMNS), parent)
        self.setHorizontalHeaderLabels(BOOK_COLUMNS)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 4)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._colours = {ASK: QColor(PRICE_DOWN), BID: QColor(PRICE_UP)}
        for row in range(self.rowCount()):
            self.setVerticalHeaderItem(row, QTableWidgetItem(""))
            for column in range(self.columnCount()):
                item = QTableWidgetItem("")
                item.setTextAlignment(_RIGHT)
                self.setItem(row, column, item)
        # Every level in sight, never a scroll bar: the chart above takes what is left.
        rows = self.verticalHeader().defaultSectionSize() * self.rowCount()
        self.setFixedHeight(
            self.horizontalHeader().sizeHint().height() + rows + 2 * self.frameWidth()
        )

    def show_depth(self, depth: Mapping[str, Any] | None) -> None:
        """Show a book; ``None`` clears it."""
        rows = book_rows(depth) if depth else []
        for row in range(self.rowCount()):
            side, level = rows[row] if row < len(rows) else ("", {})
            self.verticalHeaderItem(row).setText(side)
            cells = (
                f"{level['price']:,.2f}" if "price" in level else "",
                f"{level['quantity']:,}" if "quantity" in level else "",
                f"{level['orders']:,}" if "orders" in level else "",
            )
            for column, text in enumerate(cells):
                item = self.item(row, column)
                item.setText(text)
                if side:
                    item.setForeground(self._colours[side])

    def sides(self) -> list[str]:
        """The side of each row, top to bottom ("" for an empty row)."""
        return [self.verticalHeaderItem(row).text() for row in range(self.rowCount())]

    def prices(self) -> list[str]:
        return [self.item(row, 0).text() for row in range(self.rowCount())]
