"""The instrument master: the bundled CSV, Angel One's scrip master, the sample watchlists."""

from __future__ import annotations

import csv
import json

import pytest

from backend.brokers.angel.master import read_master
from backend.brokers.angel.protocol import EXCHANGE_TYPES
from backend.feed import EXCHANGES
from backend.instruments.master import (
    CSV_COLUMNS,
    InstrumentMaster,
    MasterFormatError,
    UnknownSymbolError,
    load_master,
)
from backend.runtime.resources import resource_path

INSTRUMENT_TYPES = {"EQ", "AMXIDX", "FUTIDX", "OPTIDX", "FUTSTK", "FUTCOM", "FUTCUR"}


def read_rows(name: str) -> list[dict[str, str]]:
    with resource_path(*name.split("/")).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def angel_row(token, symbol, name, segment, instrument_type="", **fields) -> dict[str, str]:
    """One scrip as Angel One publishes it: every value a string, prices in paise."""
    row = {
        "token": token,
        "symbol": symbol,
        "name": name,
        "expiry": "",
        "strike": "-1.000000",
        "lotsize": "1",
        "instrumenttype": instrument_type,
        "exch_seg": segment,
        "tick_size": "5.000000",
    }
    return row | fields


ANGEL_ROWS = [
    angel_row("3045", "SBIN-EQ", "SBIN", "NSE"),
    angel_row("16669", "BAJAJ-AUTO-EQ", "BAJAJ-AUTO", "NSE"),
    angel_row("2031", "M&M-EQ", "M&M", "NSE"),
    angel_row("500325", "RELIANCE", "RELIANCE", "BSE"),
    angel_row("532977", "BAJAJ-AUTO", "BAJAJ-AUTO", "BSE", tick_size="1.000000"),
    angel_row("99926000", "Nifty 50", "NIFTY", "NSE", "AMXIDX", strike="0.000000", tick_size="0"),
    angel_row("99926017", "India VIX", "INDIA VIX", "NSE", "AMXIDX", tick_size="0.000000"),
    angel_row("99919000", "SENSEX", "SENSEX", "BSE", "AMXIDX", tick_size="0.000000"),
    angel_row(
        "35001", "NIFTY29DEC26FUT", "NIFTY", "NFO", "FUTIDX", expiry="29DEC2026", lotsize="75"
    ),
    angel_row(
        "35123",
        "NIFTY29DEC2626000CE",
        "NIFTY",
        "NFO",
        "OPTIDX",
        expiry="29DEC2026",
        strike="2600000.000000",
        lotsize="75",
    ),
    angel_row(
        "866186",
        "SENSEX03DEC2685000PE",
        "SENSEX",
        "BFO",
        "OPTIDX",
        expiry="03DEC2026",
        strike="8500000.000000",
        lotsize="20",
    ),
    angel_row(
        "445001",
        "CRUDEOIL18DEC26FUT",
        "CRUDEOIL",
        "MCX",
        "FUTCOM",
        expiry="18DEC2026",
        lotsize="100",
        tick_size="100.000000",
    ),
    angel_row(
        "1284",
        "USDINR26DECFUT",
        "USDINR",
        "CDS",
        "FUTCUR",
        expiry="29DEC2026",
        lotsize="1000",
        tick_size="0.250000",
    ),
    angel_row(
        "1290",
        "USDINR26DEC8325CE",
        "USDINR",
        "CDS",
        "OPTCUR",
        expiry="29DEC2026",
        strike="832500000.000000",
        lotsize="1000",
        tick_size="0.250000",
    ),
    angel_row("1", "USDINR26DECFUT", "USDINR", "BCD", "FUTCUR", expiry="29DEC2026"),
]


@pytest.fixture
def angel_master(tmp_path):
    return InstrumentMaster(read_master(json.dumps(ANGEL_ROWS).encode(), "OpenAPIScripMaster.json"))


def read_angel_file(path):
    return read_master(path.read_bytes(), str(path))


# The bundled master ---------------------------------------------------------------------------


def test_bundled_master_covers_every_exchange_and_instrument_type(master):
    assert len(master) >= 5000
    assert {i.exchange for i in master} == set(EXCHANGES)
    assert {i.instrument_type for i in master} >= INSTRUMENT_TYPES


def test_bundled_master_holds_known_instruments(master):
    assert master.get("SBIN", "NSE").token == "3045"
    assert master.get("RELIANCE", "NSE").token == "2885"
    assert master.get("RELIANCE", "BSE").token == "500325"
    assert master.get("NIFTY", "NSE_INDEX").token == "99926000"
    assert master.get("BANKNIFTY", "NSE_INDEX").token == "99926009"
    assert master.get("SENSEX", "BSE_INDEX").token == "99919000"
    option = master.get("NIFTY29DEC2626000CE", "NFO")
    assert (option.instrument_type, option.lot_size, option.expiry, option.strike) == (
        "OPTIDX",
        75,
        "29DEC2026",
        26000.0,
    )
    assert master.get("BANKNIFTY29DEC26FUT", "NFO").lot_size == 35
    assert master.get("USDINR29DEC26FUT", "CDS").tick_size == 0.0025


def test_bundled_csv_rows_are_unique_and_well_formed():
    rows = read_rows("instruments.csv")
    assert tuple(rows[0]) == CSV_COLUMNS
    symbols = {(r["symbol"], r["exchange"]) for r in rows}
    tokens = {(EXCHANGE_TYPES[r["exchange"]], r["token"]) for r in rows}
    assert len(symbols) == len(tokens) == len(rows)
    for row in rows:
        assert row["token"].isascii() and row["token"].isdigit() and len(row["token"]) < 25, row
        ticks = float(row["price"]) / float(row["tick_size"])
        assert float(row["price"]) > 0 and abs(ticks - round(ticks)) < 1e-6, row


def test_lookups_by_symbol_agree(master):
    for instrument in master:
        assert master.get(instrument.symbol, instrument.exchange) is instrument


def test_unknown_symbol_names_symbol_and_exchange(master):
    with pytest.raises(UnknownSymbolError) as raised:
        master.get("NOSUCHSTOCK", "NSE")
    assert (raised.value.symbol, raised.value.exchange) == ("NOSUCHSTOCK", "NSE")
    assert "NOSUCHSTOCK" in str(raised.value) and "NSE" in str(raised.value)
    with pytest.raises(UnknownSymbolError, match="NFO"):
        master.get("SBIN", "NFO")
    assert master.find("NOSUCHSTOCK", "NSE") is None


# Angel One's scrip master ---------------------------------------------------------------------


def test_angel_master_maps_symbols_and_exchanges(angel_master):
    assert {(i.symbol, i.exchange) for i in angel_master} == {
        ("SBIN", "NSE"),
        ("BAJAJ-AUTO", "NSE"),
        ("M&M", "NSE"),
        ("RELIANCE", "BSE"),
        ("BAJAJ-AUTO", "BSE"),
        ("NIFTY", "NSE_INDEX"),
        ("INDIAVIX", "NSE_INDEX"),
        ("SENSEX", "BSE_INDEX"),
        ("NIFTY29DEC26FUT", "NFO"),
        ("NIFTY29DEC2626000CE", "NFO"),
        ("SENSEX03DEC2685000PE", "BFO"),
        ("CRUDEOIL18DEC26FUT", "MCX"),
        ("USDINR29DEC26FUT", "CDS"),
        ("USDINR29DEC2683.25CE", "CDS"),
    }
    sbin = angel_master.get("SBIN", "NSE")
    assert (sbin.token, sbin.instrument_type, sbin.lot_size) == ("3045", "EQ", 1)
    assert angel_master.get("NIFTY", "NSE_INDEX").token == "99926000"


def test_angel_master_converts_paise_to_rupees(angel_master):
    option = angel_master.get("NIFTY29DEC2626000CE", "NFO")
    assert (option.strike, option.tick_size, option.lot_size) == (26000.0, 0.05, 75)
    assert option.expiry == "29DEC2026"
    assert angel_master.get("SENSEX03DEC2685000PE", "BFO").strike == 85000.0
    assert angel_master.get("NIFTY29DEC26FUT", "NFO").strike == 0.0
    assert angel_master.get("SBIN", "NSE").tick_size == 0.05
    assert angel_master.get("BAJAJ-AUTO", "BSE").tick_size == 0.01
    assert angel_master.get("CRUDEOIL18DEC26FUT", "MCX").tick_size == 1.0
    assert angel_master.get("USDINR29DEC26FUT", "CDS").tick_size == pytest.approx(0.0025)
    assert angel_master.get("USDINR29DEC2683.25CE", "CDS").strike == pytest.approx(83.25)


def test_garbage_angel_file_is_refused(tmp_path):
    path = tmp_path / "master.json"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(MasterFormatError, match="not a JSON scrip master"):
        read_angel_file(path)


def test_angel_file_that_is_not_a_list_is_refused(tmp_path):
    path = tmp_path / "master.json"
    path.write_text(json.dumps({"data": ANGEL_ROWS}), encoding="utf-8")
    with pytest.raises(MasterFormatError, match="expected a JSON list"):
        read_angel_file(path)


def test_angel_scrip_without_a_field_is_refused(tmp_path):
    path = tmp_path / "master.json"
    row = dict(ANGEL_ROWS[0])
    del row["exch_seg"]
    path.write_text(json.dumps([ANGEL_ROWS[1], row]), encoding="utf-8")
    with pytest.raises(MasterFormatError, match=r"scrip #1: .*exch_seg"):
        read_angel_file(path)


def test_missing_master_file_is_refused(tmp_path):
    with pytest.raises(MasterFormatError, match="not found"):
        load_master(tmp_path / "absent.csv")


# The CSV loader -------------------------------------------------------------------------------


def write_csv(path, header, *rows, encoding="utf-8"):
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


SBIN_ROW = ("3045", "SBIN", "State Bank of India", "NSE", "EQ", "1", "0.05", "", "", "870.00")


def test_csv_master_loads_even_with_a_byte_order_mark(tmp_path):
    path = write_csv(tmp_path / "m.csv", CSV_COLUMNS, SBIN_ROW, encoding="utf-8-sig")
    sbin = load_master(path).get("SBIN", "NSE")
    assert (sbin.token, sbin.name, sbin.tick_size, sbin.price) == (
        "3045",
        "State Bank of India",
        0.05,
        870.0,
    )


def test_csv_without_columns_is_refused_naming_them(tmp_path):
    path = write_csv(tmp_path / "m.csv", ("token", "symbol", "exchange"), ("3045", "SBIN", "NSE"))
    with pytest.raises(MasterFormatError) as raised:
        load_master(path)
    message = str(raised.value)
    assert "missing columns" in message
    for column in ("name", "instrument_type", "lot_size", "tick_size", "expiry", "strike", "price"):
        assert column in message
    assert "symbol" not in message.split("missing columns")[1]


def test_csv_bad_value_is_refused_with_its_line(tmp_path):
    bad = (*SBIN_ROW[:5], "one", *SBIN_ROW[6:])
    path = write_csv(tmp_path / "m.csv", CSV_COLUMNS, SBIN_ROW, bad)
    with pytest.raises(MasterFormatError, match=r"m\.csv:3: "):
        load_master(path)


def test_csv_unknown_exchange_is_refused(tmp_path):
    path = write_csv(tmp_path / "m.csv", CSV_COLUMNS, (*SBIN_ROW[:3], "NYSE", *SBIN_ROW[4:]))
    with pytest.raises(MasterFormatError, match="unknown exchange 'NYSE'"):
        load_master(path)


def test_garbage_csv_is_refused(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(MasterFormatError, match="not a CSV instrument master"):
        load_master(path)


# The sample watchlists ------------------------------------------------------------------------


def test_sample_watchlist_symbols_exist(master):
    rows = read_rows("watchlists/sample.csv")
    assert tuple(rows[0]) == ("symbol", "exchange", "mode")
    assert len(rows) == 1500
    assert len({(r["symbol"], r["exchange"]) for r in rows}) == 1500
    assert {r["mode"] for r in rows} == {"LTP", "Quote", "Depth"}
    assert [r for r in rows if (r["symbol"], r["exchange"]) not in master] == []


def test_fno_watchlist_symbols_exist(master):
    rows = read_rows("watchlists/fno_2500.csv")
    assert tuple(rows[0]) == ("symbol", "exchange")
    assert len({r["symbol"] for r in rows}) == len(rows) == 2500
    assert [r for r in rows if (r["symbol"], r["exchange"]) not in master] == []


def test_nifty50_watchlist_symbols_exist(master):
    lines = resource_path("watchlists", "nifty50.txt").read_text(encoding="utf-8").split()
    assert len(set(lines)) == len(lines) == 50
    pairs = [line.split(":")[::-1] for line in lines]
    assert {exchange for _, exchange in pairs} == {"NSE"}
    assert [p for p in pairs if tuple(p) not in master] == []
