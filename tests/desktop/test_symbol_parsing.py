"""Parsing symbol lists: every accepted form, and a clear account of what is not understood."""

from __future__ import annotations

import pytest

from backend.instruments.symbol_lists import (
    DEFAULT_MODE,
    WatchEntry,
    parse_file,
    parse_mode,
    parse_text,
)
from desktop.watchlist.importing import plan_import


def test_exchange_colon_symbol_and_symbol_comma_exchange_lines():
    result = parse_text("NSE:SBIN\n tcs , nse \nBSE:SBIN,LTP\nM&M;NSE;depth\n# comment\n\n")
    assert result.entries == [
        WatchEntry("SBIN", "NSE", 2),
        WatchEntry("TCS", "NSE", 2),
        WatchEntry("SBIN", "BSE", 1),
        WatchEntry("M&M", "NSE", 3),
    ]
    assert result.not_understood == []
    assert result.error is None


def test_bare_symbols_need_a_default_exchange():
    assert parse_text("SBIN\nINFY", "NSE", 1).entries == [
        WatchEntry("SBIN", "NSE", 1),
        WatchEntry("INFY", "NSE", 1),
    ]
    result = parse_text("SBIN")
    assert result.entries == []
    assert result.not_understood == ["line 1: 'SBIN'"]


def test_csv_header_in_any_case_with_optional_mode_and_extra_columns():
    text = "Name,EXCHANGE,Symbol,Mode\nState Bank,nse,sbin,LTP\nTata,NSE,TCS,3\nInfosys,NSE,INFY,\n"
    assert parse_text(text).entries == [
        WatchEntry("SBIN", "NSE", 1),
        WatchEntry("TCS", "NSE", 3),
        WatchEntry("INFY", "NSE", 2),
    ]


def test_csv_rows_with_problems_are_listed_with_their_line_numbers():
    text = "symbol,exchange,mode\nSBIN,NSE,\n,NSE,\nTCS,XYZ,\nINFY,NSE,fast\n"
    result = parse_text(text)
    assert result.entries == [WatchEntry("SBIN", "NSE")]
    assert result.not_understood == [
        "line 3: ',NSE,' (symbol or exchange missing)",
        "line 4: 'TCS,XYZ,' (unknown exchange 'XYZ')",
        "line 5: 'INFY,NSE,fast' (unknown mode 'fast' (use LTP, Quote, Depth or 1, 2, 3))",
    ]


def test_semicolon_csv():
    assert parse_text("symbol;exchange\nSBIN;NSE\n").entries == [WatchEntry("SBIN", "NSE")]


@pytest.mark.parametrize(("text", "mode"), [("ltp", 1), ("Quote", 2), ("DEPTH", 3), ("2", 2)])
def test_modes(text, mode):
    assert parse_mode(text) == mode


def test_files_by_suffix(tmp_path):
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("\ufeffsymbol,exchange\nSBIN,NSE\n", encoding="utf-8")
    txt_file = tmp_path / "list.txt"
    txt_file.write_text("NSE:TCS\r\nINFY,NSE\r\n", encoding="utf-8")
    assert parse_file(csv_file).entries == [WatchEntry("SBIN", "NSE")]
    assert parse_file(txt_file).entries == [WatchEntry("TCS", "NSE"), WatchEntry("INFY", "NSE")]


def test_empty_binary_and_headerless_garbage_files_are_errors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"  \n")
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"caf\xe9\n")
    garbage = tmp_path / "prices.csv"
    garbage.write_text("name,price\nfoo,1\n", encoding="utf-8")
    assert parse_file(empty).error == "empty.txt is empty"
    assert parse_file(binary).error == "photo.csv is not a text file (it holds binary data)"
    assert parse_file(latin).error == "latin.txt is not a UTF-8 text file"
    assert "needs a header row naming its symbol and exchange" in parse_file(garbage).error


def test_plan_skips_duplicates_and_lists_unknown_symbols(small_master):
    parsed = parse_text("NSE:SBIN\nNSE:SBIN,LTP\nNSE:TCS\nNSE:NOSUCH\nBSE:SBIN\nrubbish here")
    summary = plan_import(parsed, {("TCS", "NSE"): DEFAULT_MODE}, small_master, "list.txt")
    assert summary.added == [WatchEntry("SBIN", "NSE"), WatchEntry("SBIN", "BSE")]
    assert summary.duplicates == 2
    assert summary.unknown == [WatchEntry("NOSUCH", "NSE")]
    assert summary.severity == "warning"
    assert summary.text() == (
        "list.txt: added 2; duplicates skipped 2; unknown symbols 1 (NSE:NOSUCH);"
        " lines not understood 1 (line 6: 'rubbish here')."
    )


def test_plan_without_a_master_accepts_and_says_so():
    summary = plan_import(parse_text("NSE:ANYTHING"), {}, None, "typed symbol")
    assert summary.added == [WatchEntry("ANYTHING", "NSE")]
    assert "not checked" in summary.text()
