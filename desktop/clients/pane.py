"""The Clients pane: the table of API clients and, beside it, what the selected client holds.

:meth:`ClientsPane.preferred_width` is the width that shows every column of the table and the
holdings beside it, for the window to lay its docks out by.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QStringListModel, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QListView,
    QSplitter,
    QStyle,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from backend.bus.messages import ClientsStats
from backend.instruments.symbol_lists import MODE_NAMES
from desktop.clients.model import ClientsModel
from desktop.tables.view_setup import column_width, setup_table_view

NO_SELECTION = "Select a client to list what it holds."
#: The holdings' width, in average characters: ``NSE:SBIN  Quote``, and an option's name mostly.
HOLDINGS_CHARACTERS = 26
#: The splitter's handle and the dock's frame round the pane.
FRAMES = 16

Holding = tuple[str, str, int]  # symbol, exchange, mode


def holding_text(holding: Holding) -> str:
    """``NSE:SBIN  Quote``."""
    symbol, exchange, mode = holding
    return f"{exchange}:{symbol}  {MODE_NAMES.get(mode, str(mode))}"


class ClientsPane(QWidget):
    """Fed by ``SYS.CLIENTS`` messages through :meth:`update_clients`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ClientsModel(self)
        #: The address this app's own feed connects from ("" while it is not connected).
        self.own_address: Callable[[], str] = lambda: ""
        self.view = QTableView(self)
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        setup_table_view(self.view, self.model)
        self.holdings_label = QLabel(NO_SELECTION, self)
        self.holdings_label.setWordWrap(True)  # as narrow as the list under it
        self.holdings = QStringListModel(self)
        self.holdings_view = QListView(self)
        self.holdings_view.setModel(self.holdings)
        self.holdings_view.setUniformItemSizes(True)
        #: The holdings listed, as the message gave them (``None`` while none are).
        self._listed: list[Holding] | None = None

        side = QWidget(self)
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.holdings_label)
        side_layout.addWidget(self.holdings_view)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.view)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([self.table_width(), self.holdings_width()])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self.view.selectionModel().selectionChanged.connect(self._show_holdings)
        self.model.rowsRemoved.connect(self._show_holdings)

    def table_width(self) -> int:
        """The table's width with every column in sight, and room for a scroll bar."""
        columns = sum(column_width(self.view, column) for column in self.model.columns)
        scroll_bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        return columns + 2 * self.view.frameWidth() + scroll_bar

    def holdings_width(self) -> int:
        return self.fontMetrics().averageCharWidth() * HOLDINGS_CHARACTERS

    def preferred_width(self) -> int:
        """The pane's width with every column of the table in sight, the holdings beside it."""
        return self.table_width() + self.holdings_width() + FRAMES

    def update_clients(self, stats: ClientsStats) -> None:
        """Show a ``SYS.CLIENTS`` message."""
        self.model.update_clients(stats.sessions, self.own_address())
        self._show_holdings()

    def selected_row(self) -> int | None:
        rows = self.view.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def _show_holdings(self) -> None:
        row = self.selected_row()
        if row is None:
            self.holdings_label.setText(NO_SELECTION)
            holdings = None
        else:
            client = self.model.row_object(row)
            holdings = client.stats.symbols
            self.holdings_label.setText(f"Client {client.name} holds {len(holdings):,}:")
        if holdings != self._listed:  # the texts of thousands are made only when they change
            self._listed = holdings
            self.holdings.setStringList([holding_text(holding) for holding in holdings or ()])
