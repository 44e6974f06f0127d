"""The cell painter: a table's cells painted from its column spec, in the spec's colours."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QImage, QPalette

from backend.instruments.symbol_lists import WatchEntry
from desktop.colours import PRICE_DOWN, PRICE_UP
from desktop.tables.cell_painter import ColumnCellPainter
from desktop.tables.columns import column_index
from desktop.watchlist.columns import WATCHLIST_COLUMNS
from desktop.watchlist.model import WatchlistModel
from desktop.watchlist.view import WatchlistView

LTP = column_index(WATCHLIST_COLUMNS, "ltp")
SYMBOL = column_index(WATCHLIST_COLUMNS, "symbol")


def tick(symbol: str, ltp: float) -> dict:
    return {"type": "market_data", "symbol": symbol, "exchange": "NSE", "data": {"ltp": ltp}}


def cell_colours(view: WatchlistView, row: int, column: int) -> set[str]:
    """The colours painted in a cell of the view, as ``#rrggbb``."""
    image: QImage = view.viewport().grab().toImage()
    rect = view.visualRect(view.model().index(row, column))
    return {
        QColor(image.pixel(x, y)).name()
        for x in range(rect.left(), rect.right())
        for y in range(rect.top(), rect.bottom())
    }


@pytest.fixture
def view(qtbot) -> WatchlistView:
    """A shown watchlist of SBIN and TCS."""
    model = WatchlistModel(flush_interval_ms=10_000)
    model.add_entries([WatchEntry("SBIN", "NSE"), WatchEntry("TCS", "NSE")])
    view = WatchlistView(model)
    qtbot.addWidget(view)
    view.resize(900, 300)
    view.show()
    return view


def test_cells_are_painted_from_the_spec_in_the_move_s_colour(qtbot, view):
    model = view.watchlist
    assert isinstance(view.itemDelegate(), ColumnCellPainter)
    for first, then in (("SBIN", (800.0, 801.0)), ("TCS", (4000.0, 3990.0))):
        for price in then:
            model.push_tick(tick(first, price))
            model.flush()
    qtbot.waitUntil(lambda: PRICE_UP in cell_colours(view, 0, LTP))
    assert PRICE_DOWN not in cell_colours(view, 0, LTP)
    assert PRICE_DOWN in cell_colours(view, 1, LTP)


def test_a_selected_row_is_painted_as_selected(qtbot, view):
    highlight = view.palette().color(QPalette.ColorRole.Highlight).name()
    view.selectRow(1)
    qtbot.waitUntil(lambda: highlight in cell_colours(view, 1, SYMBOL))
    assert highlight not in cell_colours(view, 0, SYMBOL)
