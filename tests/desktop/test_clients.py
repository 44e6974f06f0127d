"""The Clients table from SYS.CLIENTS payloads: rows come and go, the app's own feed is marked."""

from __future__ import annotations

import pytest

from desktop.clients.pane import ClientsPane
from desktop.stats.clients import parse_client


def session(number: int, peer: str, symbols: list) -> dict:
    return {
        "client": number,
        "peer": peer,
        "connected_at": 1_764_069_731.0,
        "authenticated": True,
        "subscriptions": len(symbols),
        "symbols": symbols,
        "sent": 1234,
        "queued": 0,
        "conflated": 5,
        "throttled": 0,
    }


def test_rows_follow_the_payloads_and_a_selection_stays_on_its_client(qtbot):
    pane = ClientsPane()
    qtbot.addWidget(pane)
    pane.own_address = lambda: "127.0.0.1:5000"
    own = session(1, "127.0.0.1:5000", [["SBIN", "NSE", 2]])
    other = session(2, "127.0.0.1:6000", [["TCS", "NSE", 1], ["NIFTY", "NSE_INDEX", 3]])
    pane.update_clients({"sessions": [other, own]})
    assert [row.name for row in pane.model.rows()] == ["1 (this app)", "2"]
    assert pane.model.index(0, 5).data() == "1,234"

    pane.view.selectRow(1)
    assert pane.holdings.stringList() == ["NSE:TCS  LTP", "NSE_INDEX:NIFTY  Depth"]
    third = session(3, "127.0.0.1:7000", [])
    pane.update_clients({"sessions": [own, other, third]})
    assert pane.selected_row() == 1
    assert pane.holdings_label.text() == "Client 2 holds 2:"

    pane.update_clients({"sessions": [own, third]})
    assert [row.stats.number for row in pane.model.rows()] == [1, 3]
    assert pane.holdings.stringList() == []


def test_a_holding_that_is_not_three_values_is_refused():
    assert parse_client(session(1, "127.0.0.1:5000", [["SBIN", "NSE", 2]])).symbols == (
        ("SBIN", "NSE", 2),
    )
    with pytest.raises(ValueError):
        parse_client(session(1, "127.0.0.1:5000", [["SBIN", "NSE"]]))
