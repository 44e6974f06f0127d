"""Dhan's instrument master: its compact scrip-master CSV, read into FeedPool's instruments.

Dhan publishes ``api-scrip-master.csv`` daily with the 16 columns of :data:`COLUMNS`.
:func:`read_master` maps each row of the segments FeedPool serves to FeedPool's (OpenAlgo's)
symbol, as OpenAlgo maps Dhan's rows:

- equities (``EQUITY``) keep Dhan's trading symbol (``SBIN``);
- indices (``INDEX``) take Dhan's trading symbol in capitals without spaces or hyphens
  (``NIFTY``, ``INDIA VIX`` -> ``INDIAVIX``), with OpenAlgo's names where they differ
  (:data:`INDEX_SYMBOLS`: ``NIFTY NEXT 50`` -> ``NIFTYNXT50``, BSE's ``SNSX50`` ->
  ``SENSEX50``);
- futures and options are rebuilt from the underlying (the first word of the custom symbol, as
  in ``NIFTY 29 DEC 26000 CALL``), the expiry date, the strike and the option type:
  ``NIFTY29DEC26FUT``, ``NIFTY29DEC2626000CE``.

Exchange and instrument name select FeedPool's exchange (:data:`EXCHANGES`); BSE currency
derivatives, which FeedPool has no exchange for, and anything else are skipped. Tick sizes are
read as paise (``5.0000`` is 0.05 rupee: chosen as OpenAlgo reads them) and become rupees. The
token is Dhan's security ID.

:func:`write_master` writes instruments in the same format, for the exchange simulator to
serve, numbering security IDs in order.
"""

from __future__ import annotations

import csv
import datetime
import functools
import io
import operator
from collections.abc import Iterable

from backend.brokers.zerodha.master import strike_text
from backend.instruments.master import Instrument, MasterFormatError

URL = "https://images.dhan.co/api-data/api-scrip-master.csv"
PATH = "/api-data/api-scrip-master.csv"
COLUMNS = (
    "SEM_EXM_EXCH_ID",
    "SEM_SEGMENT",
    "SEM_SMST_SECURITY_ID",
    "SEM_INSTRUMENT_NAME",
    "SEM_EXPIRY_CODE",
    "SEM_TRADING_SYMBOL",
    "SEM_LOT_UNITS",
    "SEM_CUSTOM_SYMBOL",
    "SEM_EXPIRY_DATE",
    "SEM_STRIKE_PRICE",
    "SEM_OPTION_TYPE",
    "SEM_TICK_SIZE",
    "SEM_EXPIRY_FLAG",
    "SEM_EXCH_INSTRUMENT_TYPE",
    "SEM_SERIES",
    "SM_SYMBOL_NAME",
)

_FUTURES = ("FUTIDX", "FUTSTK", "FUTCOM", "FUTCUR")
_OPTIONS = ("OPTIDX", "OPTSTK", "OPTFUT", "OPTCUR")
#: (exchange, instrument name) -> FeedPool's exchange, for every kind of row FeedPool serves.
EXCHANGES = {
    ("NSE", "EQUITY"): "NSE",
    ("BSE", "EQUITY"): "BSE",
    ("NSE", "INDEX"): "NSE_INDEX",
    ("BSE", "INDEX"): "BSE_INDEX",
    **{("NSE", kind): "NFO" for kind in ("FUTIDX", "FUTSTK", "OPTIDX", "OPTSTK")},
    **{("BSE", kind): "BFO" for kind in ("FUTIDX", "FUTSTK", "OPTIDX", "OPTSTK")},
    **{("NSE", kind): "CDS" for kind in ("FUTCUR", "OPTCUR")},
    **{("MCX", kind): "MCX" for kind in ("FUTCOM", "FUTIDX", "OPTFUT")},
}
#: Dhan's index names (capitals, no spaces or hyphens) whose OpenAlgo symbol differs.
INDEX_SYMBOLS = {
    "NIFTYNEXT50": "NIFTYNXT50",
    "NIFTYMCAP50": "NIFTYMIDCAP50",
    "NIFTYMID100FREE": "NIFTYMIDCAP100",
    "NIFTYSMALLCAP100": "NIFTYSMLCAP100",
    "NIFTYSMALLCAP250": "NIFTYSMLCAP250",
    "SNSX50": "SENSEX50",
    "SNXT50": "BSESENSEXNEXT50",
    "MIDCAP": "BSEMIDCAP",
    "SMLCAP": "BSESMALLCAP",
}
_INDEX_NAMES = {symbol: name for name, symbol in INDEX_SYMBOLS.items()}
# What write_master writes for each FeedPool exchange: Dhan's exchange and segment letter.
_WRITTEN = {
    "NSE": ("NSE", "E"),
    "BSE": ("BSE", "E"),
    "NSE_INDEX": ("NSE", "I"),
    "BSE_INDEX": ("BSE", "I"),
    "NFO": ("NSE", "D"),
    "BFO": ("BSE", "D"),
    "CDS": ("NSE", "C"),
    "MCX": ("MCX", "M"),
}
EXPIRY_TIME = "14:30:00"


@functools.cache
def _expiry(text: str) -> str:
    """Dhan's ``2026-12-29 14:30:00`` as ``29DEC2026``, the form every FeedPool master uses."""
    day = datetime.date.fromisoformat(text.strip()[:10])
    return day.strftime("%d%b%Y").upper()


def index_symbol(trading_symbol: str) -> str:
    """FeedPool's (OpenAlgo's) symbol for one of Dhan's index names."""
    squeezed = trading_symbol.upper().replace(" ", "").replace("-", "")
    return INDEX_SYMBOLS.get(squeezed, squeezed)


def dhan_symbol(fields: tuple[str, ...], exchange: str, expiry: str) -> str:
    """FeedPool's (OpenAlgo's) symbol for a row of Dhan's compact master (:data:`_READ`'s
    fields of it)."""
    kind, trading_symbol, custom, _, strike, option_type, _, _ = fields
    if kind == "EQUITY":
        return trading_symbol.strip()
    if kind == "INDEX":
        return index_symbol(trading_symbol)
    base = underlying(custom) + expiry[:5] + expiry[-2:]
    if kind in _FUTURES:
        return base + "FUT"
    return base + strike_text(float(strike)) + option_type.strip()


def underlying(custom_symbol: str) -> str:
    """The underlying of a derivative: the first word of its custom symbol
    (``NIFTY 29 DEC 26000 CALL``)."""
    words = custom_symbol.split(maxsplit=1)
    if not words:
        raise ValueError("SEM_CUSTOM_SYMBOL")
    return words[0]


#: The columns :func:`read_master` reads, in the order :func:`dhan_symbol` takes them.
_READ = (
    "SEM_INSTRUMENT_NAME",
    "SEM_TRADING_SYMBOL",
    "SEM_CUSTOM_SYMBOL",
    "SEM_EXPIRY_DATE",
    "SEM_STRIKE_PRICE",
    "SEM_OPTION_TYPE",
    "SEM_LOT_UNITS",
    "SEM_TICK_SIZE",
)


def read_master(data: bytes, source: str) -> list[Instrument]:
    """Instruments from Dhan's compact scrip-master CSV; rows of other segments are skipped."""
    try:
        rows = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        header = [name.strip() for name in next(rows, [])]
        missing = set(COLUMNS) - set(header)
        if missing:
            raise MasterFormatError(f"{source}: missing columns {', '.join(sorted(missing))}")
        exchange_at = header.index("SEM_EXM_EXCH_ID")
        security_at = header.index("SEM_SMST_SECURITY_ID")
        fields = operator.itemgetter(*(header.index(name) for name in _READ))
        instruments = []
        for line, row in enumerate(rows, start=2):
            try:
                found = _instrument(row[exchange_at], row[security_at], fields(row))
            except (IndexError, TypeError, ValueError) as exc:
                raise MasterFormatError(f"{source}:{line}: bad or missing {exc}") from None
            if found is not None:
                instruments.append(found)
        return instruments
    except (UnicodeDecodeError, csv.Error) as exc:
        raise MasterFormatError(f"{source}: not Dhan's scrip-master CSV ({exc})") from None


def _instrument(exchange_id: str, security_id: str, fields: tuple[str, ...]) -> Instrument | None:
    kind, _, custom, expiry_date, strike, _, lot, tick = fields
    exchange = EXCHANGES.get((exchange_id.strip(), kind.strip()))
    if exchange is None:
        return None
    option = kind in _OPTIONS
    derivative = option or kind in _FUTURES
    expiry = _expiry(expiry_date) if derivative else ""
    return Instrument(
        token=str(int(security_id)),
        symbol=dhan_symbol(fields, exchange, expiry),
        name=underlying(custom) if derivative else custom.strip(),
        exchange=exchange,
        instrument_type=kind,
        lot_size=int(float(lot or 1)),
        tick_size=float(tick or 0) / 100,
        expiry=expiry,
        strike=max(float(strike or 0), 0.0) if option else 0.0,
    )


def write_master(instruments: Iterable[Instrument]) -> bytes:
    """``instruments`` as Dhan's compact CSV, security IDs numbered in order: what
    :func:`read_master` reads back under the same symbols."""
    listed = list(instruments)
    # A weekly expiry is one before the last of its underlying's month.
    last_of_month: dict[tuple[str, str], str] = {}
    for instrument in listed:
        if instrument.expiry:
            month = (instrument.name, instrument.expiry[2:])
            expiry = _written(instrument.expiry)[0]
            last_of_month[month] = max(last_of_month.get(month, expiry), expiry)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(
        _dhan_row(number, instrument, last_of_month)
        for number, instrument in enumerate(listed, start=1)
    )
    return out.getvalue().encode()


@functools.cache
def _written(expiry: str) -> tuple[str, str, str]:
    """FeedPool's ``29DEC2026`` as Dhan writes it: ``2026-12-29``, ``Dec2026``, ``29 DEC``."""
    day = datetime.datetime.strptime(expiry, "%d%b%Y").date()
    return day.isoformat(), day.strftime("%b%Y"), day.strftime("%d %b").upper()


def _dhan_row(
    security_id: int, instrument: Instrument, last_of_month: dict[tuple[str, str], str]
) -> tuple[object, ...]:
    exchange_id, segment = _WRITTEN[instrument.exchange]
    kind = _dhan_kind(instrument)
    lot, tick = f"{instrument.lot_size:.1f}", f"{instrument.tick_size * 100:.4f}"
    if kind in ("EQUITY", "INDEX"):
        name, symbol = instrument.name, instrument.symbol
        exchange_kind, series = ("ES", "EQ") if kind == "EQUITY" else ("INDEX", "NA")
        if kind == "INDEX":
            symbol = _INDEX_NAMES.get(symbol, symbol)
        return (
            exchange_id,
            segment,
            security_id,
            kind,
            0,
            symbol,
            lot,
            name,
            "",
            "0",
            "",
            tick,
            "NA",
            exchange_kind,
            series,
            name.upper(),
        )
    underlying_name = instrument.name
    iso, month, day = _written(instrument.expiry)
    flag = "W" if iso < last_of_month[underlying_name, instrument.expiry[2:]] else "M"
    dated = f"{underlying_name} {day}"
    if kind in _OPTIONS:
        option_type = instrument.symbol[-2:]
        text = strike_text(instrument.strike)
        symbol = f"{underlying_name}-{month}-{text}-{option_type}"
        custom = f"{dated} {text} {'CALL' if option_type == 'CE' else 'PUT'}"
        strike = f"{instrument.strike:.5f}"
    else:
        option_type, strike = "", "0"
        symbol, custom = f"{underlying_name}-{month}-FUT", f"{dated} FUT"
    expiry_date = f"{iso} {EXPIRY_TIME}"
    return (
        exchange_id,
        segment,
        security_id,
        kind,
        0,
        symbol,
        lot,
        custom,
        expiry_date,
        strike,
        option_type,
        tick,
        flag,
        kind,
        "NA",
        "",
    )


def _dhan_kind(instrument: Instrument) -> str:
    """Dhan's instrument name for one of FeedPool's instruments."""
    if instrument.exchange.endswith("_INDEX"):
        return "INDEX"
    kind = instrument.instrument_type
    if kind.startswith(("FUT", "OPT")):
        return "OPTFUT" if instrument.exchange == "MCX" and kind.startswith("OPT") else kind
    return "EQUITY"
