"""The Clients table from SYS.CLIENTS payloads: rows come and go, the app's own feed is marked."""

from __future__ import annotations

from bus_messages import client_stats, clients_stats
from PySide6.QtCore import Qt

from desktop.clients.model import ClientsModel
from desktop.clients.pane import ClientsPane


def test_rows_follow_the_payloads_and_a_selection_stays_on_its_client(qtbot):
    pane = ClientsPane()
    qtbot.addWidget(pane)
    pane.own_address = lambda: "127.0.0.1:5000"
    own = client_stats(1, "127.0.0.1:5000", [("SBIN", "NSE", 2)])
    other = client_stats(2, "127.0.0.1:6000", [("TCS", "NSE", 1), ("NIFTY", "NSE_INDEX", 3)])
    pane.update_clients(clients_stats(other, own))
    assert [row.name for row in pane.model.rows()] == ["1 (this app)", "2"]
    assert pane.model.index(0, 5).data() == "1,234"

    pane.view.selectRow(1)
    assert pane.holdings.stringList() == ["NSE:TCS  LTP", "NSE_INDEX:NIFTY  Depth"]
    third = client_stats(3, "127.0.0.1:7000", [])
    pane.update_clients(clients_stats(own, other, third))
    assert pane.selected_row() == 1
    assert pane.holdings_label.text() == "Client 2 holds 2:"

    pane.update_clients(clients_stats(own, third))
    assert [row.stats.client for row in pane.model.rows()] == [1, 3]
    assert pane.holdings.stringList() == []


def test_short_titles_say_what_they_count_on_hover(qtbot):
    model = ClientsModel()
    titles = [model.headerData(n, Qt.Orientation.Horizontal) for n in range(model.columnCount())]
    assert titles[3:5] == ["Auth", "Subs"]
    tips = [
        model.headerData(n, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole) for n in (3, 4)
    ]
    assert tips == ["Whether it has given the API key", "Subscriptions it holds"]
