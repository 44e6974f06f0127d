"""Several broker accounts on the desk: the gauges grouped per account, the watchlist saying
which account carries a row and whether it is borrowed, the History plotting per account and
marking failovers and returns; real SYS.POOL and SYS.MOVES structs fed to the widgets."""

from __future__ import annotations

import pytest
from bus_messages import account_stats, connection_stats, pool_stats, symbols_moved

from backend.feed import DISPLACED, FAILOVER, MOVES_TOPIC, POOL_TOPIC, RETURN
from backend.instruments.symbol_lists import WatchEntry
from desktop.colours import STATE_COLOURS
from desktop.gauges.panel import ConnectionGauges
from desktop.history.pane import HistoryPane
from desktop.watchlist.columns import SUBSCRIBED, WAITING_ACCOUNT
from desktop.watchlist.model import WatchlistModel
from desktop.watchlist.pane import ACCOUNT_COLUMN, WatchlistPane

EXPIRED = "the broker ended the session: TokenException"
ANGEL = account_stats("angel-main", "angel", symbols=1500, borrowed=500)
KITE = account_stats(
    "kite", "zerodha", serving=False, session_problem=EXPIRED, capacity=9000, lent=500
)
TWO_ACCOUNTS = pool_stats(
    connection_stats(1, account="angel-main", symbols=1000, ticks_per_second=300.0),
    connection_stats(2, account="angel-main", symbols=500, ticks_per_second=100.0),
    connection_stats(4, account="kite", state="session_expired", capacity=3000),
    capacity=12000,
    accounts=[ANGEL, KITE],
)
ONE_ACCOUNT = pool_stats(
    connection_stats(1, symbols=10, ticks_per_second=5.0),
    accounts=[account_stats("", "simulator")],
)


@pytest.fixture
def gauges(qtbot) -> ConnectionGauges:
    widget = ConnectionGauges()
    qtbot.addWidget(widget)
    widget.resize(1400, 320)
    widget.show()
    return widget


def test_gauges_are_grouped_per_account_under_the_summed_total(qtbot, gauges):
    gauges.update_stats(TWO_ACCOUNTS)
    groups = gauges.groups
    assert list(groups) == ["angel-main", "kite"]
    angel, kite = groups["angel-main"].heading.text(), groups["kite"].heading.text()
    assert angel == "angel-main (angel) · serving · 500 borrowed"
    assert kite == f"kite (zerodha) · not serving: {EXPIRED} · 500 lent"
    assert STATE_COLOURS["session_expired"] in groups["kite"].heading.styleSheet()
    assert gauges.gauges[1].parent() is groups["angel-main"]
    assert gauges.gauges[4].parent() is groups["kite"]
    assert gauges.total.reading.headline == "1,500 / 12,000"
    assert gauges.total.reading.title == "Pool of 2 accounts"
    assert not gauges.log_in_button.isVisible()  # each account has its own
    qtbot.waitUntil(groups["kite"].log_in_button.isVisible)  # shown once laid out
    assert not groups["angel-main"].log_in_button.isVisible()
    with qtbot.waitSignal(gauges.log_in_requested) as asked:
        groups["kite"].log_in_button.click()
    assert asked.args == ["kite"]


def test_one_account_shows_its_gauges_as_before(gauges):
    gauges.update_stats(TWO_ACCOUNTS)
    gauges.update_stats(ONE_ACCOUNT)  # the backend restarted with one account
    assert gauges.groups == {}
    assert list(gauges.gauges) == [1]
    assert gauges.gauges[1].parent() is gauges.total.parent()  # beside the total, ungrouped
    assert gauges.total.reading.headline == "10 / 3,000"
    assert gauges.total.reading.title == "Pool simulator/FEEDPOOL"


@pytest.fixture
def model(qtbot) -> WatchlistModel:
    model = WatchlistModel()
    model.add_entries([WatchEntry("SBIN", "NSE", 2), WatchEntry("TCS", "NSE", 2)])
    model.apply_subscribe_reply(
        {
            "subscriptions": [
                {"symbol": s, "exchange": "NSE", "status": "success", "mode": 2, **where}
                for s, where in (
                    ("SBIN", {"connection": 4, "account": "kite"}),
                    ("TCS", {"connection": 1, "account": "angel-main"}),
                )
            ]
        }
    )
    return model


def account_cell(model: WatchlistModel, row: int) -> str:
    return model.data(model.index(row, ACCOUNT_COLUMN))


def test_a_row_says_which_account_carries_it_and_whether_it_is_borrowed(model):
    assert account_cell(model, 0) == "kite" and model.rows()[0].connection == 4
    failover = symbols_moved(FAILOVER, "kite", "angel-main", "NSE:SBIN", connections=[2])
    assert model.apply_moves(failover) == 1
    sbin, tcs = model.rows()
    assert account_cell(model, 0) == "angel-main (borrowed)"
    assert sbin.status == SUBSCRIBED and sbin.connection == 2
    assert "borrowed for account kite" in sbin.status_tooltip
    assert account_cell(model, 1) == "angel-main" and tcs.connection == 1  # not moved
    model.apply_moves(symbols_moved(RETURN, "angel-main", "kite", "NSE:SBIN", connections=[4]))
    assert account_cell(model, 0) == "kite" and model.rows()[0].connection == 4


def test_a_displaced_row_waits_for_its_account_with_the_reason(model):
    model.apply_moves(symbols_moved(FAILOVER, "kite", "angel-main", "NSE:SBIN", "NSE:INFY"))
    reason = "angel-main needed the room for its own symbols"
    model.apply_moves(symbols_moved(DISPLACED, "angel-main", "kite", "NSE:SBIN", reason=reason))
    sbin = model.rows()[0]
    assert sbin.status == WAITING_ACCOUNT and account_cell(model, 0) == ""
    assert sbin.status_text == f"waiting for its account: {reason}"
    assert model.retry_waiting(10) == []  # its account's return brings it back, not room
    assert model.accounts_serving({"angel-main"}) == 0
    assert model.accounts_serving({"angel-main", "kite"}) == 1  # its own account is back
    assert model.rows()[0].status == SUBSCRIBED and account_cell(model, 0) == "kite"


def test_the_account_column_shows_with_several_accounts(qtbot, small_master):
    pane = WatchlistPane(WatchlistModel(), small_master)
    qtbot.addWidget(pane)
    assert pane.view.isColumnHidden(ACCOUNT_COLUMN)
    pane.handle_bus_message(POOL_TOPIC, TWO_ACCOUNTS)
    assert not pane.view.isColumnHidden(ACCOUNT_COLUMN)
    pane.import_typed("NSE:SBIN", "NSE", 2)
    pane.handle_bus_message(MOVES_TOPIC, symbols_moved(FAILOVER, "kite", "angel-main", "NSE:SBIN"))
    assert pane.model.rows()[0].account == "angel-main"
    pane.handle_bus_message(POOL_TOPIC, ONE_ACCOUNT)
    assert pane.view.isColumnHidden(ACCOUNT_COLUMN)


def test_history_plots_per_account_and_marks_failovers_and_returns(qtbot):
    now = [1000.0]
    pane = HistoryPane(clock=lambda: now[0], sample_ms=60_000)
    qtbot.addWidget(pane)
    pane.show()
    pane.update_stats(TWO_ACCOUNTS)
    pane.sample()
    assert list(pane.curves) == ["angel-main", "kite"]
    assert pane.curves["angel-main"].getData()[1][-1] == 400.0
    assert pane.curves["kite"].getData()[1][-1] == 0.0
    assert pane.total_curve.getData()[1][-1] == 400.0
    pane.note_moves(symbols_moved(FAILOVER, "kite", "angel-main", "NSE:SBIN", "NSE:TCS"))
    now[0] += 5
    pane.note_moves(symbols_moved(RETURN, "angel-main", "kite", "NSE:SBIN", "NSE:TCS"))
    pane.note_moves(symbols_moved(DISPLACED, "angel-main", "kite", "NSE:INFY"))  # no mark
    labels = [event.label for event in pane.history.events]
    assert labels == [
        "failover kite → angel-main: 2 symbols",
        "return angel-main → kite: 2 symbols",
    ]
    assert [event.time for event in pane.history.events] == [1000.0, 1005.0]
