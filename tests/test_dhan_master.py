"""Dhan's compact scrip master: rows shaped like the published file's read under OpenAlgo's
symbols, what FeedPool cannot serve skipped, bad files refused, and the simulator's master
(the bundled one in Dhan's format) downloaded, cached and read back whole."""

from __future__ import annotations

import pytest

from backend.brokers import BROKERS
from backend.brokers.dhan.master import COLUMNS, read_master, write_master
from backend.instruments.master import MasterFormatError
from backend.instruments.sources import broker_master, cache_path

HEADER = ",".join(COLUMNS)
ROWS = [
    "NSE,E,3045,EQUITY,0,SBIN,1.0,State Bank of India,,0,,5.0000,NA,ES,EQ,STATE BANK OF INDIA",
    "BSE,E,500112,EQUITY,0,SBIN,1.0,State Bank of India,,0,,5.0000,NA,ES,A,STATE BANK OF INDIA",
    "NSE,I,13,INDEX,0,NIFTY,1.0,Nifty 50,,0,,5.0000,NA,INDEX,X,NIFTY 50",
    "NSE,I,21,INDEX,0,INDIA VIX,1.0,India VIX,,0,,1.0000,NA,INDEX,X,INDIA VIX",
    "NSE,I,38,INDEX,0,NIFTY NEXT 50,1.0,Nifty Next 50,,0,,5.0000,NA,INDEX,X,NIFTY NEXT 50",
    "BSE,I,51,INDEX,0,SENSEX,1.0,SENSEX,,0,,5.0000,NA,INDEX,X,SENSEX",
    "BSE,I,83,INDEX,0,SNSX50,1.0,SNSX50,,0,,5.0000,NA,INDEX,X,SNSX50",
    "NSE,D,52175,OPTIDX,0,NIFTY-Oct2026-22700-CE,75.0,NIFTY 06 OCT 22700 CALL,"
    "2026-10-06 14:30:00,22700.00000,CE,5.0000,W,OP,NA,",
    "NSE,D,61234,OPTSTK,0,BAJAJ-AUTO-Dec2026-9000-PE,75.0,BAJAJ-AUTO DEC 9000 PUT,"
    "2026-12-29 14:30:00,9000.00000,PE,5.0000,M,OP,NA,",
    "NSE,D,35001,FUTIDX,0,NIFTY-Dec2026-FUT,75.0,NIFTY DEC FUT,2026-12-29 14:30:00,"
    "-0.01000,XX,10.0000,M,FUTIDX,NA,",
    "NSE,C,1101,FUTCUR,0,USDINR-Dec2026-FUT,1000.0,USDINR DEC FUT,2026-12-29 12:00:00,"
    "-0.01000,XX,0.2500,M,FUTCUR,NA,USDINR",
    "NSE,C,1150,OPTCUR,0,USDINR-Dec2026-83.25-CE,1000.0,USDINR 29 DEC 83.25 CALL,"
    "2026-12-29 12:00:00,83.25000,CE,0.2500,M,OPTCUR,NA,",
    "MCX,M,445001,FUTCOM,0,CRUDEOIL-Dec2026-FUT,100.0,CRUDEOIL DEC FUT,2026-12-18 23:30:00,"
    "-0.01000,XX,100.0000,M,FUTCOM,NA,CRUDEOIL",
    "BSE,C,9001,FUTCUR,0,USDINR-Dec2026-FUT,1000.0,USDINR DEC FUT,2026-12-29 12:00:00,"
    "-0.01000,XX,0.2500,M,FUTCUR,NA,USDINR",
    "NSE,D,99,FUTCOM,0,GOLD-Dec2026-FUT,1.0,GOLD DEC FUT,2026-12-29 14:30:00,0,XX,5.0,M,X,NA,",
]


def master(*rows: str, header: str = HEADER) -> bytes:
    return "\n".join([header, *rows]).encode()


def test_rows_read_under_openalgos_symbols():
    read = {(i.symbol, i.exchange): i for i in read_master(master(*ROWS), "dhan.csv")}

    assert set(read) == {
        ("SBIN", "NSE"),
        ("SBIN", "BSE"),
        ("NIFTY", "NSE_INDEX"),
        ("INDIAVIX", "NSE_INDEX"),
        ("NIFTYNXT50", "NSE_INDEX"),
        ("SENSEX", "BSE_INDEX"),
        ("SENSEX50", "BSE_INDEX"),
        ("NIFTY06OCT2622700CE", "NFO"),
        ("BAJAJ-AUTO29DEC269000PE", "NFO"),
        ("NIFTY29DEC26FUT", "NFO"),
        ("USDINR29DEC26FUT", "CDS"),
        ("USDINR29DEC2683.25CE", "CDS"),
        ("CRUDEOIL18DEC26FUT", "MCX"),
    }  # BSE currency derivatives and NSE commodities: no FeedPool exchange
    sbin = read["SBIN", "NSE"]
    assert (sbin.token, sbin.name, sbin.tick_size, sbin.lot_size) == (
        "3045",
        "State Bank of India",
        0.05,
        1,
    )
    option = read["NIFTY06OCT2622700CE", "NFO"]
    assert (option.token, option.name, option.expiry, option.strike, option.lot_size) == (
        "52175",
        "NIFTY",
        "06OCT2026",
        22700.0,
        75,
    )
    future = read["NIFTY29DEC26FUT", "NFO"]
    assert (future.strike, future.tick_size, future.instrument_type) == (0.0, 0.1, "FUTIDX")
    assert read["USDINR29DEC2683.25CE", "CDS"].tick_size == 0.0025
    assert read["CRUDEOIL18DEC26FUT", "MCX"].tick_size == 1.0


def test_a_broker_key_is_the_segment_and_the_security_id():
    read = {(i.symbol, i.exchange): i for i in read_master(master(*ROWS), "dhan.csv")}
    adapter = BROKERS["dhan"].adapter
    assert adapter.key(read["SBIN", "NSE"]) == (1, 3045)
    assert adapter.key(read["NIFTY", "NSE_INDEX"]) == (0, 13)
    assert adapter.key(read["SENSEX", "BSE_INDEX"]) == (0, 51)
    assert adapter.key(read["NIFTY06OCT2622700CE", "NFO"]) == (2, 52175)
    assert adapter.key(read["USDINR29DEC26FUT", "CDS"]) == (3, 1101)
    assert adapter.key(read["CRUDEOIL18DEC26FUT", "MCX"]) == (5, 445001)


def test_the_header_may_carry_spaces_and_a_byte_order_mark():
    spaced = "\ufeff" + ", ".join(COLUMNS)
    read = read_master(master(ROWS[0], header=spaced), "dhan.csv")
    assert [(i.symbol, i.exchange) for i in read] == [("SBIN", "NSE")]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (master(ROWS[0], header=HEADER.replace("SEM_SMST_SECURITY_ID", "ID")), "missing columns"),
        (master(ROWS[0].replace(",3045,", ",SBIN,")), "dhan.csv:2: bad or missing"),
        (master(ROWS[7].replace("2026-10-06", "06-10-2026")), "dhan.csv:2: bad or missing"),
        (master("NSE,D,1"), "dhan.csv:2: bad or missing"),
        (b"\xff\xfe not utf-8", "not Dhan's scrip-master CSV"),
    ],
)
def test_a_master_that_is_not_dhans_is_refused_naming_where(data, problem):
    with pytest.raises(MasterFormatError, match=problem):
        read_master(data, "dhan.csv")


def test_the_bundled_master_in_dhans_format_reads_back_whole(master):
    document = write_master(master)
    assert document.decode().splitlines()[0] == HEADER
    read = read_master(document, "the simulator")
    assert len(read) == len(master)
    for instrument in read:
        bundled = master.get(instrument.symbol, instrument.exchange)
        assert (instrument.name, instrument.expiry, instrument.strike) == (
            bundled.name,
            bundled.expiry,
            bundled.strike,
        )
        assert (instrument.lot_size, instrument.tick_size) == (bundled.lot_size, bundled.tick_size)


async def test_the_simulators_master_is_downloaded_cached_and_read(
    make_simulator, master, tmp_path
):
    dhan = BROKERS["dhan"]
    simulator = await make_simulator(broker="dhan")
    url = simulator.master_url
    assert url.endswith("/api-data/api-scrip-master.csv")

    got = await broker_master(dhan, url, folder=tmp_path)

    assert {(i.symbol, i.exchange) for i in got} == {(i.symbol, i.exchange) for i in master}
    cached = cache_path(dhan, url, tmp_path)
    assert cached.is_file() and cached.name.startswith("dhan")
    await simulator.stop()
    again = await broker_master(dhan, url, folder=tmp_path)  # today's copy, nothing to download
    assert len(again) == len(got)
