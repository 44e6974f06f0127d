"""The Clients pane: the table of API clients and, beside it, what the selected client holds."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QStringListModel, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QListView,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from backend.bus.messages import ClientsStats
from backend.instruments.symbol_lists import MODE_NAMES
from desktop.clients.model import ClientsModel
from desktop.tables.view_setup import setup_table_view

NO_SELECTION = "Select a client to list what it holds."

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
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self.view.selectionModel().selectionChanged.connect(self._show_holdings)
        self.model.rowsRemoved.connect(self._show_holdings)

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
