"""The watchlist's filter box, its right-click menu, new rows seen where they land, and the one
log line of each import, removal and mode change."""

from __future__ import annotations

import logging

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from backend.instruments.symbol_lists import WatchEntry
from desktop.watchlist.columns import PENDING, REJECTED, SUBSCRIBED, WAITING
from desktop.watchlist.model import WatchlistModel
from desktop.watchlist.pane import WatchlistPane

SYMBOLS = "NSE:SBIN\nNSE:TCS\nNSE:INFY\nBSE:SBIN\nNSE:RELIANCE"


@pytest.fixture
def pane(qtbot, small_master) -> WatchlistPane:
    pane = WatchlistPane(WatchlistModel(flush_interval_ms=10_000), small_master)
    qtbot.addWidget(pane)
    pane.resize(900, 400)
    pane.show()
    qtbot.waitExposed(pane)
    return pane


@pytest.fixture
def records(caplog) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="feedpool.desktop.watchlist")
    return caplog


def answer(pane: WatchlistPane, **statuses: str) -> None:
    """The backend's reply for NSE symbols: ``SYMBOL=status`` (subscribed, waiting, rejected)."""
    items = []
    for symbol, status in statuses.items():
        item = {"symbol": symbol, "exchange": "NSE", "broker": "simulator"}
        if status == SUBSCRIBED:
            mode = pane.model.rows()[pane.model.row_of((symbol, "NSE"))].mode
            items.append({**item, "status": "success", "mode": mode, "connection": 1})
        else:
            code = "MAX_CAPACITY_REACHED" if status == WAITING else "BROKER_ERROR"
            items.append({**item, "status": "error", "code": code, "message": f"{code} message"})
    pane.model.apply_subscribe_reply({"type": "subscribe", "subscriptions": items})


def shown(pane: WatchlistPane) -> list[str]:
    proxy = pane.view.proxy
    return [
        pane.model.row_object(proxy.mapToSource(proxy.index(n, 0)).row()).label
        for n in range(proxy.rowCount())
    ]


def select(pane: WatchlistPane, *labels: str) -> None:
    """Select the rows of these ``EXCHANGE:SYMBOL``, and only them."""
    pane.view.reveal(tuple(reversed(label.split(":"))) for label in labels)


def test_the_filter_matches_symbol_exchange_mode_and_status(pane):
    pane.import_pasted(SYMBOLS)
    answer(pane, SBIN=SUBSCRIBED, TCS=WAITING, INFY=REJECTED)
    pane.filter_edit.setText("sbi")
    assert shown(pane) == ["NSE:SBIN", "BSE:SBIN"]
    assert pane.shown_label.isVisible() and pane.shown_label.text() == "2 of 5 shown"
    pane.filter_edit.setText("WAITING")
    assert shown(pane) == ["NSE:TCS"]
    pane.filter_edit.setText("bse:")
    assert shown(pane) == ["BSE:SBIN"]
    pane.filter_edit.setText("quote")
    assert len(shown(pane)) == 5
    pane.filter_edit.clear()
    assert len(shown(pane)) == 5
    assert not pane.shown_label.isVisible()


def test_new_rows_are_selected_and_scrolled_to_in_a_sorted_table(qtbot, pane):
    pane.model.add_entries(WatchEntry(f"S{n:03}", "NSE") for n in range(300))
    pane.view.sortByColumn(0, Qt.SortOrder.DescendingOrder)
    pane.view.scrollToTop()
    pane.filter_edit.setText("S0")  # a filter that hides what comes next
    pane.import_pasted("NSE:TCS")
    assert pane.filter_edit.text() == ""  # cleared, or the new row would be hidden
    row = pane.view.proxy.mapFromSource(pane.model.index(pane.model.row_of(("TCS", "NSE")), 0))
    assert pane.view.selectionModel().selectedRows() == [row]
    qtbot.waitUntil(lambda: pane.view.viewport().rect().contains(pane.view.visualRect(row)))


def test_changing_the_mode_from_the_menu_keeps_the_rows_in_place(qtbot, pane, records):
    pane.import_pasted(SYMBOLS)
    answer(pane, SBIN=SUBSCRIBED, TCS=SUBSCRIBED, INFY=SUBSCRIBED, RELIANCE=SUBSCRIBED)
    select(pane, "NSE:TCS", "NSE:RELIANCE")
    menu = pane.view.context_menu()
    change = next(action for action in menu.actions() if action.text() == "Change mode")
    assert [action.text() for action in change.menu().actions()] == ["LTP", "Quote", "Depth"]
    assert pane.view.mode_actions[2].isChecked()  # both are Quote
    with qtbot.waitSignal(pane.model.symbols_added) as subscribe:
        pane.view.mode_actions[3].trigger()
    menu.deleteLater()
    assert subscribe.args[0] == [WatchEntry("TCS", "NSE", 3), WatchEntry("RELIANCE", "NSE", 3)]
    rows = pane.model.rows()
    assert [(row.label, row.mode) for row in rows] == [
        ("NSE:SBIN", 2),
        ("NSE:TCS", 3),
        ("NSE:INFY", 2),
        ("BSE:SBIN", 2),
        ("NSE:RELIANCE", 3),
    ]
    assert (rows[1].status, rows[4].status) == (PENDING, PENDING)
    text = (
        "selected rows: mode changed 2 (NSE:TCS to Depth, NSE:RELIANCE to Depth);"
        " awaiting the backend 2."
    )
    assert pane.summary_label.text() == text
    answer(pane, TCS=SUBSCRIBED, RELIANCE=WAITING)
    text = (
        "selected rows: mode changed 2 (NSE:TCS to Depth, NSE:RELIANCE to Depth);"
        " subscribed 1; waiting for room 1."
    )
    qtbot.waitUntil(lambda: pane.summary_label.text() == text)
    # The import's line waits for BSE:SBIN's answer; the mode change is answered for.
    assert [r.getMessage() for r in records.records] == [f"Watchlist: {text}"]


def test_the_add_box_changes_the_mode_of_a_row_it_holds(pane):
    pane.import_pasted("NSE:SBIN\nNSE:TCS")
    summary = pane.import_typed("SBIN", "NSE", 3)
    assert summary.mode_changed == [WatchEntry("SBIN", "NSE", 3)] and summary.duplicates == 0
    assert pane.model.entries() == [WatchEntry("SBIN", "NSE", 3), WatchEntry("TCS", "NSE")]
    assert pane.summary_label.text() == (
        "typed symbol: mode changed 1 (NSE:SBIN to Depth); awaiting the backend 1."
    )
    assert pane.import_typed("SBIN", "NSE", 3).duplicates == 1  # already Depth


def test_retry_copy_and_show_in_detail(qtbot, pane):
    pane.import_pasted(SYMBOLS)
    answer(pane, SBIN=SUBSCRIBED, TCS=WAITING, INFY=REJECTED)
    select(pane, "NSE:SBIN")
    pane.view.context_menu().deleteLater()
    assert not pane.view.retry_action.isEnabled()  # served
    select(pane, "NSE:SBIN", "NSE:TCS", "NSE:INFY")
    pane.view.context_menu().deleteLater()
    assert pane.view.retry_action.isEnabled()
    with qtbot.waitSignal(pane.model.subscribe_again) as asked:
        pane.view.retry_action.trigger()
    assert asked.args[0] == [WatchEntry("TCS", "NSE"), WatchEntry("INFY", "NSE")]

    pane.view.copy_action.trigger()
    assert QGuiApplication.clipboard().text() == "NSE:SBIN\nNSE:TCS\nNSE:INFY"
    assert pane.view.copy_action.text() == "Copy symbols"

    select(pane, "NSE:INFY")
    followed, requested = [], []
    pane.view.current_symbol_changed.connect(followed.append)
    pane.view.detail_requested.connect(requested.append)
    pane.view.detail_action.trigger()
    assert followed == requested == [("INFY", "NSE")]
    assert pane.view.currentIndex().row() == 2


def test_an_import_and_a_removal_are_logged_in_one_line_each(qtbot, pane, records):
    pane.import_pasted(
        "\n".join(f"NSE:{s}" for s in ("SBIN", "TCS", "INFY", "RELIANCE", "M&M", "NOSUCH"))
    )
    answer(pane, SBIN=SUBSCRIBED, TCS=SUBSCRIBED, INFY=WAITING, RELIANCE=WAITING)
    assert [r.getMessage() for r in records.records] == []  # M&M not answered yet
    answer(pane, **{"M&M": REJECTED})
    qtbot.waitUntil(lambda: len(records.records) == 1)
    select(pane, "NSE:SBIN", "NSE:INFY", "NSE:RELIANCE", "NSE:M&M")
    pane.view.remove_selected()
    assert [(r.levelname, r.getMessage()) for r in records.records] == [
        (
            "WARNING",
            "Watchlist: pasted text: added 5; subscribed 2; waiting for room 2; rejected 1;"
            " unknown symbols 1 (NSE:NOSUCH).",
        ),
        (
            "INFO",
            "Removed 4 symbols from the watchlist: NSE:SBIN, NSE:INFY, NSE:RELIANCE, NSE:M&M"
            " (1 rejected, 1 subscribed, 2 waiting for room)",
        ),
    ]


def test_an_import_the_backend_does_not_answer_is_logged_as_it_stands(
    qtbot, pane, records, monkeypatch
):
    monkeypatch.setattr("desktop.watchlist.pane.SETTLE_MS", 50)
    pane.import_pasted("NSE:SBIN\nNSE:TCS")
    pane.import_pasted("NSE:INFY")
    answer(pane, INFY=SUBSCRIBED)
    qtbot.waitUntil(lambda: len(records.records) == 2)
    assert sorted(r.getMessage() for r in records.records) == [
        "Watchlist: pasted text: added 1; subscribed 1.",
        "Watchlist: pasted text: added 2; awaiting the backend 2.",
    ]
