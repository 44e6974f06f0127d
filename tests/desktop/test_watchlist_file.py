"""Saving, restoring and exporting the watchlist."""

from __future__ import annotations

import csv

import pytest

from backend.instruments.symbol_lists import WatchEntry, parse_file
from desktop.watchlist.file import (
    WatchlistFileError,
    default_watchlist_path,
    export_watchlist_csv,
    load_watchlist,
    save_watchlist,
)
from desktop.watchlist.model import WatchlistModel

ENTRIES = [
    WatchEntry("SBIN", "NSE", 1),
    WatchEntry("M&M", "NSE", 2),
    WatchEntry("NIFTY", "NSE_INDEX", 3),
]


def test_round_trip_through_a_new_model(qtbot, tmp_path):
    path = tmp_path / "data" / "watchlist.json"
    model = WatchlistModel(flush_interval_ms=10_000)
    model.add_entries(ENTRIES)
    save_watchlist(model.entries(), path)

    restored = WatchlistModel(flush_interval_ms=10_000)
    with qtbot.waitSignal(restored.symbols_added) as added:
        restored.add_entries(load_watchlist(path))
    assert added.args[0] == ENTRIES
    assert restored.entries() == ENTRIES


def test_missing_file_is_an_empty_watchlist(tmp_path):
    assert load_watchlist(tmp_path / "none.json") == []


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        '{"symbols": 3}',
        '{"symbols": [{"symbol": "SBIN"}]}',
        '{"symbols": [{"symbol": "X", "exchange": "MOON"}]}',
    ],
)
def test_bad_files_raise_a_clear_error(tmp_path, content):
    path = tmp_path / "watchlist.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(WatchlistFileError, match="watchlist"):
        load_watchlist(path)


def test_default_path_is_in_the_user_data_dir(private_dirs):
    assert default_watchlist_path().is_relative_to(private_dirs)
    assert default_watchlist_path().name == "watchlist.json"


def test_csv_export_has_the_table_columns_and_imports_back(qtbot, tmp_path):
    model = WatchlistModel(flush_interval_ms=10_000)
    model.add_entries(ENTRIES)
    model.push_tick({"symbol": "SBIN", "exchange": "NSE", "data": {"ltp": 812.5, "volume": 1200}})
    model.flush()
    path = tmp_path / "export.csv"
    assert export_watchlist_csv(model.rows(), path) == 3

    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["Symbol"] == "SBIN" and rows[0]["LTP"] == "812.50"
    assert rows[0]["Volume"] == "1,200" and rows[0]["Mode"] == "LTP"
    assert rows[2]["Status"] == "pending"
    assert parse_file(path).entries == ENTRIES
