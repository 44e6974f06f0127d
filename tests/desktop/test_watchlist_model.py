"""The watchlist model: rows, signals, buffered ticks with exact change reports, statuses."""

from __future__ import annotations

import pytest
from frames import frame
from PySide6.QtCore import Qt

from backend.instruments.symbol_lists import WatchEntry
from desktop.tables.cell_ranges import coalesce_cells
from desktop.tables.columns import column_index
from desktop.watchlist.columns import WATCHLIST_COLUMNS
from desktop.watchlist.model import MAX_EXACT_ROWS, WatchlistModel

LTP = column_index(WATCHLIST_COLUMNS, "ltp")
VOLUME = column_index(WATCHLIST_COLUMNS, "volume")
STATUS = column_index(WATCHLIST_COLUMNS, "status")
CONNECTION = column_index(WATCHLIST_COLUMNS, "connection")
ENTRIES = [WatchEntry("SBIN", "NSE"), WatchEntry("TCS", "NSE"), WatchEntry("INFY", "NSE", 1)]


@pytest.fixture
def model(qtbot) -> WatchlistModel:
    model = WatchlistModel(flush_interval_ms=10_000)
    model.add_entries(ENTRIES)
    return model


def tick(symbol: str, ltp: float, **data) -> dict:
    return {
        "type": "market_data",
        "symbol": symbol,
        "exchange": "NSE",
        "mode": 2,
        "data": {
            "symbol": symbol,
            "exchange": "NSE",
            "ltp": ltp,
            "timestamp": 1764060000000,
            **data,
        },
    }


def reported(model: WatchlistModel) -> list[tuple[int, int, int, int]]:
    """The rectangles ``model`` reports changed from now on."""
    reports: list[tuple[int, int, int, int]] = []
    model.dataChanged.connect(
        lambda top, bottom, roles: reports.append(
            (top.row(), bottom.row(), top.column(), bottom.column())
        )
    )
    return reports


def cell(model: WatchlistModel, row: int, column: int) -> str:
    return model.data(model.index(row, column))


def test_add_emits_only_new_entries(qtbot, model):
    with qtbot.waitSignal(model.symbols_added) as blocker:
        added = model.add_entries([WatchEntry("SBIN", "NSE", 3), WatchEntry("RELIANCE", "NSE")])
    assert added == blocker.args[0] == [WatchEntry("RELIANCE", "NSE")]
    assert model.rowCount() == 4
    assert cell(model, 3, STATUS) == "pending"


def test_remove_rows_emits_removed_entries_in_order(qtbot, model):
    with qtbot.waitSignal(model.symbols_removed) as blocker:
        model.remove_rows([2, 0])
    assert blocker.args[0] == [ENTRIES[0], ENTRIES[2]]
    assert model.entries() == [ENTRIES[1]]
    assert model.row_of(("TCS", "NSE")) == 0


def test_ticks_are_reported_at_the_flush_and_the_newest_fields_win(model):
    reports = reported(model)
    model.push_tick(tick("TCS", 4000.0, volume=10))
    model.push_tick(tick("TCS", 4001.5))
    assert reports == []
    model.flush()
    assert reports == [(1, 1, LTP, LTP), (1, 1, VOLUME, VOLUME + 1)]
    assert cell(model, 1, LTP) == "4,001.50"
    assert cell(model, 1, VOLUME) == "10"


def test_frames_wait_undecoded_and_the_newest_wins(model):
    reports = reported(model)
    assert model.push_frame(frame("TCS", 4000.0, volume=10))
    assert model.push_frame(frame("TCS", 4002.0, volume=12, timestamp=1764060000000))
    assert not model.push_frame(frame("WIPRO", 500.0))  # not watched
    assert not model.push_frame(frame("INFY", 1500.0, mode=2))  # INFY is watched in LTP mode
    assert not model.push_frame(b'{"type":"subscribe","status":"success"}')
    model.flush()
    assert reports == [(1, 1, LTP, LTP), (1, 1, VOLUME, VOLUME + 1)]
    assert (cell(model, 1, LTP), cell(model, 1, VOLUME)) == ("4,002.00", "12")
    assert model.rows()[2].ltp is None


def test_each_applied_tick_is_observed_with_when_it_came(model):
    seen = []
    model.observe_tick = lambda data, received: seen.append((data["ltp"], received))
    model.push_frame(frame("SBIN", 800.0))
    model.push_tick(tick("TCS", 4000.0))
    model.flush()
    assert sorted(ltp for ltp, _ in seen) == [800.0, 4000.0]
    assert all(received > 1.7e9 for _, received in seen)  # epoch seconds


def test_waiting_ticks_stay_on_their_rows_when_rows_above_are_removed(model):
    model.push_frame(frame("TCS", 4000.0))
    model.push_frame(frame("INFY", 1500.0, mode=1))
    model.remove_rows([0])
    assert [row.ltp for row in model.rows()] == [4000.0, 1500.0]
    assert not model.push_frame(frame("SBIN", 800.0))
    assert model.push_frame(frame("INFY", 1501.0, mode=1))
    model.flush()
    assert cell(model, 1, LTP) == "1,501.00"


def test_timer_flush_updates_ltp(qtbot):
    model = WatchlistModel(flush_interval_ms=20)
    model.add_entries(ENTRIES)
    model.push_tick(tick("SBIN", 812.35, change_percent=1.25))
    qtbot.waitUntil(lambda: cell(model, 0, LTP) == "812.35")
    assert cell(model, 0, column_index(WATCHLIST_COLUMNS, "change_percent")) == "+1.25"


def test_flush_reports_exactly_the_changed_cells(qtbot, model):
    model.push_tick(tick("SBIN", 800.0, volume=5))
    model.push_tick(tick("TCS", 4000.0, volume=5))
    model.flush()
    reports = []
    model.dataChanged.connect(
        lambda top, bottom, roles: reports.append(
            (top.row(), bottom.row(), top.column(), bottom.column())
        )
    )
    model.push_tick(tick("SBIN", 801.0, volume=5))  # only the price moves
    model.push_tick(tick("TCS", 4000.0, volume=5))  # nothing changes
    model.push_tick(tick("INFY", 1500.0, volume=9))
    model.flush()
    assert sorted(reports) == [(0, 0, LTP, LTP), (2, 2, LTP, LTP), (2, 2, VOLUME, VOLUME + 1)]


def test_price_colour_follows_the_move(model):
    model.push_tick(tick("SBIN", 800.0))
    model.flush()
    model.push_tick(tick("SBIN", 799.0))
    model.flush()
    colour = model.data(model.index(0, LTP), Qt.ItemDataRole.ForegroundRole)
    assert colour.name() == "#dc2626"


def test_ticks_of_unwatched_symbols_are_not_buffered(model):
    model.push_tick(tick("WIPRO", 500.0))
    model.flush()
    assert [row.ltp for row in model.rows()] == [None, None, None]


def test_subscribe_reply_sets_connection_waiting_and_rejection_reason(model):
    answered = []
    model.answered.connect(answered.append)
    model.apply_subscribe_reply(
        {
            "type": "subscribe",
            "status": "partial",
            "subscriptions": [
                {
                    "symbol": "SBIN",
                    "exchange": "NSE",
                    "status": "success",
                    "mode": 2,
                    "connection": 2,
                },
                {
                    "symbol": "TCS",
                    "exchange": "NSE",
                    "status": "error",
                    "code": "MAX_CAPACITY_REACHED",
                    "message": "Maximum capacity reached: 3000/3000 symbols held",
                },
                {
                    "symbol": "INFY",
                    "exchange": "NSE",
                    "status": "error",
                    "code": "BROKER_ERROR",
                    "message": "broker refused INFY on NSE: AB1019 token invalid",
                },
            ],
        }
    )
    assert cell(model, 0, STATUS) == "subscribed"
    assert cell(model, 0, CONNECTION) == "2"
    assert cell(model, 1, STATUS) == "waiting for room"
    tooltip = model.data(model.index(1, STATUS), Qt.ItemDataRole.ToolTipRole)
    assert tooltip == "waiting for room: Maximum capacity reached: 3000/3000 symbols held"
    assert cell(model, 2, STATUS) == "rejected: broker refused INFY on NSE: AB1019 token invalid"
    assert answered == [1]  # one row refused for capacity


def test_coalesce_cells_merges_neighbours_with_the_same_columns():
    changes = {0: {4, 5}, 1: {4, 5}, 2: {4}, 5: {4, 6}}
    assert coalesce_cells(changes) == [(0, 1, 4, 5), (2, 2, 4, 4), (5, 5, 4, 4), (5, 5, 6, 6)]


def test_a_flush_of_many_rows_reports_one_rectangle_and_each_row_reads_its_newest(qtbot):
    model = WatchlistModel(flush_interval_ms=10_000)
    symbols = [f"SYM{n}" for n in range(2 * MAX_EXACT_ROWS + 10)]
    model.add_entries([WatchEntry(symbol, "NSE") for symbol in symbols])
    reports = reported(model)
    for symbol in symbols[1::2]:  # every other row: exact rectangles would be one per row
        model.push_frame(frame(symbol, 10.0, volume=3))
        model.push_frame(frame(symbol, 11.0, volume=4))
    model.flush()
    assert reports == [(1, len(symbols) - 1, LTP, VOLUME + 1)]
    assert cell(model, len(symbols) - 1, LTP) == "11.00"
    assert [row.volume for row in model.rows()] == [None, 4] * (len(symbols) // 2)
