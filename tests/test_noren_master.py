"""The Noren vendors' symbol masters: rows shaped like the published files (Shoonya's and Zebu's
zipped ``<EXCH>_symbols.txt``, Flattrade's CSVs) read under OpenAlgo's symbols, bad files refused
naming where, and the bundled master written in each vendor's format and read back whole, also
downloaded from the simulator and cached."""

from __future__ import annotations

import io
import zipfile

import pytest

from backend.brokers import BROKERS
from backend.brokers.noren.master import read_master, write_master
from backend.brokers.noren.vendors import VENDORS
from backend.instruments.master import MasterFormatError
from backend.instruments.sources import broker_master, cache_path

NSE = """Exchange,Token,LotSize,Symbol,TradingSymbol,Instrument,TickSize,
NSE,3045,1,SBIN,SBIN-EQ,EQ,0.05,
NSE,11536,1,TCS,TCS-BE,BE,0.05,
NSE,26000,1,NIFTY,NIFTY INDEX,INDEX,0.05,
NSE,26009,1,BANKNIFTY,NIFTY BANK,INDEX,0.05,
NSE,26017,1,INDIAVIX,INDIA VIX,INDEX,0.0025,
NSE,26013,1,NIFTYNXT50,Nifty Next 50,INDEX,0.05,
"""
DERIVATIVES = (
    "Exchange,Token,LotSize,Symbol,TradingSymbol,Expiry,Instrument,OptionType,StrikePrice,TickSize,"
)
NFO = f"""{DERIVATIVES}
NFO,48407,65,NIFTY,NIFTY18AUG26C18550,18-AUG-2026,OPTIDX,CE,18550,0.05,
NFO,35001,75,NIFTY,NIFTY29DEC26F,29-DEC-2026,FUTIDX,XX,-0.01,0.05,
NFO,61234,75,BAJAJ-AUTO,BAJAJ-AUTO29DEC26P9000,29-DEC-2026,OPTSTK,PE,9000,0.05,
"""
CDS = """Exchange,Token,LotSize,Precision,Multiplier,Symbol,TradingSymbol,Expiry,Instrument,\
OptionType,StrikePrice,TickSize,
CDS,1150,1000,4,1000,USDINR,USDINR29DEC26C83.25,29-DEC-2026,OPTCUR,CE,83.25,0.0025,
"""
MCX = """Exchange,Token,LotSize,GNGD,Symbol,TradingSymbol,Expiry,Instrument,OptionType,\
StrikePrice,TickSize,
MCX,445001,100,1,CRUDEOIL,CRUDEOIL18DEC26F,18-DEC-2026,FUTCOM,XX,-0.01,1,
"""
BSE = """Exchange,Token,LotSize,Symbol,TradingSymbol,Instrument,TickSize,
BSE,500112,1,SBIN,SBIN,A,0.05,
BSE,1,1,SENSEX,SENSEX,INDEX,0.01,
BSE,12,1,SNSX50,SNSX50,INDEX,0.01,
"""
NCX = f"""{DERIVATIVES}
NCX,9,5,GUARSEED,GUARSEED18DEC26F,18-DEC-2026,FUTCOM,XX,-0.01,1,
"""
FLATTRADE_NFO = """Token,Lotsize,Symbol,Tradingsymbol,Instrument,Expiry,Strike,Optiontype
48407,65,NIFTY,NIFTY18AUG26C18550,OPTIDX,18-AUG-2026,18550,CE
"""


def zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, body in files.items():
            archive.writestr(name, body)
    return out.getvalue()


def published(exchange: str, text: str) -> bytes:
    """One exchange's file as Shoonya publishes it: a zip holding ``<EXCH>_symbols.txt``."""
    return zipped({f"{exchange}_symbols.txt": text.encode()})


def test_the_published_files_read_under_openalgos_symbols():
    bundle = zipped(
        {
            f"{exchange}_symbols.txt.zip": published(exchange, text)
            for exchange, text in (
                ("NSE", NSE),
                ("NFO", NFO),
                ("CDS", CDS),
                ("MCX", MCX),
                ("BSE", BSE),
                ("NCX", NCX),
            )
        }
    )
    read = {(i.symbol, i.exchange): i for i in read_master(bundle, "https://api.shoonya.com")}

    assert set(read) == {
        ("SBIN", "NSE"),
        ("TCS", "NSE"),
        ("NIFTY", "NSE_INDEX"),
        ("BANKNIFTY", "NSE_INDEX"),
        ("INDIAVIX", "NSE_INDEX"),
        ("NIFTYNXT50", "NSE_INDEX"),
        ("NIFTY18AUG2618550CE", "NFO"),
        ("NIFTY29DEC26FUT", "NFO"),
        ("BAJAJ-AUTO29DEC269000PE", "NFO"),
        ("USDINR29DEC2683.25CE", "CDS"),
        ("CRUDEOIL18DEC26FUT", "MCX"),
        ("SBIN", "BSE"),
        ("SENSEX", "BSE_INDEX"),
        ("SENSEX50", "BSE_INDEX"),
    }  # NCX: no FeedPool exchange
    sbin, nifty = read["SBIN", "NSE"], read["NIFTY", "NSE_INDEX"]
    assert (sbin.token, sbin.lot_size, sbin.tick_size) == ("3045", 1, 0.05)
    assert (nifty.token, nifty.name, nifty.instrument_type) == ("26000", "NIFTY INDEX", "INDEX")
    option = read["NIFTY18AUG2618550CE", "NFO"]
    assert (option.token, option.name, option.expiry, option.strike, option.lot_size) == (
        "48407",
        "NIFTY",
        "18AUG2026",
        18550.0,
        65,
    )
    assert read["USDINR29DEC2683.25CE", "CDS"].tick_size == 0.0025
    assert read["NIFTY29DEC26FUT", "NFO"].strike == 0.0


def test_one_published_file_reads_as_it_is_downloaded():
    read = read_master(published("NFO", NFO), "https://go.mynt.in/NFO_symbols.txt.zip")
    assert [i.symbol for i in read] == [
        "NIFTY18AUG2618550CE",
        "NIFTY29DEC26FUT",
        "BAJAJ-AUTO29DEC269000PE",
    ]


def test_a_flattrade_csv_takes_its_exchange_from_its_name_and_a_default_tick():
    url = "https://flattrade.s3.ap-south-1.amazonaws.com/scripmaster/Nfo_Index_Derivatives.csv"
    (option,) = read_master(FLATTRADE_NFO.encode(), url)
    assert (option.symbol, option.exchange, option.token) == ("NIFTY18AUG2618550CE", "NFO", "48407")
    assert (option.tick_size, option.lot_size, option.expiry) == (0.05, 65, "18AUG2026")


@pytest.mark.parametrize(
    ("data", "source", "problem"),
    [
        (NSE.replace("TradingSymbol", "Name").encode(), "NSE_symbols.txt", "missing columns"),
        (NSE.replace("3045", "SBIN").encode(), "NSE_symbols.txt", r"NSE_symbols.txt:2: bad or"),
        (NFO.replace("18-AUG-2026", "2026-08-18").encode(), "NFO_symbols.txt", r"\.txt:2: bad"),
        (NFO.replace(",CE,", ",CA,").encode(), "NFO_symbols.txt", "bad or missing OptionType"),
        (FLATTRADE_NFO.encode(), "https://example.com/master.csv", "no Exchange column"),
        (b"\xff\xfe not utf-8", "NSE_symbols.txt", "not a Noren symbol master"),
        (zipped({}), "NSE_symbols.txt.zip", "an empty zip"),
        (b"<html>Not found</html>", "NSE_symbols.txt", "missing columns"),
    ],
)
def test_a_master_that_is_not_norens_is_refused_naming_where(data, source, problem):
    with pytest.raises(MasterFormatError, match=problem):
        read_master(data, source)


@pytest.mark.parametrize("vendor", ["shoonya", "flattrade"])
def test_the_bundled_master_in_the_vendors_format_reads_back_whole(master, vendor):
    document = write_master(VENDORS[vendor], master)
    with zipfile.ZipFile(io.BytesIO(document)) as archive:
        assert archive.namelist() == list(VENDORS[vendor].master_files)

    read = read_master(document, "the simulator")

    assert len(read) == len(master)
    flattrade = vendor == "flattrade"  # Flattrade's files carry no tick size
    for instrument in read:
        bundled = master.get(instrument.symbol, instrument.exchange)
        assert (instrument.token, instrument.expiry, instrument.strike, instrument.lot_size) == (
            bundled.token,
            bundled.expiry,
            bundled.strike,
            bundled.lot_size,
        )
        if bundled.expiry or bundled.exchange.endswith("_INDEX"):
            assert instrument.name == bundled.name
        if not flattrade:
            assert instrument.tick_size == bundled.tick_size


async def test_the_simulators_master_is_downloaded_cached_and_read(
    make_simulator, master, tmp_path
):
    zebu = BROKERS["zebu"]
    simulator = await make_simulator(broker="zebu")
    url = simulator.master_url
    assert url.endswith("/NSE_symbols.txt.zip")  # the first of Zebu's files, one per exchange

    got = await broker_master(zebu, url, folder=tmp_path)

    assert {(i.symbol, i.exchange) for i in got} == {(i.symbol, i.exchange) for i in master}
    assert cache_path(zebu, url, tmp_path).is_file()
    await simulator.stop()
    again = await broker_master(zebu, url, folder=tmp_path)  # today's copy, nothing to download
    assert len(again) == len(got)
