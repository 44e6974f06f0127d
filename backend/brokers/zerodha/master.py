"""Zerodha Kite's instrument master: its instruments CSV, read into FeedPool's instruments.

Kite publishes the CSV daily at ``https://api.kite.trade/instruments`` with the columns
``instrument_token, exchange_token, tradingsymbol, name, last_price, expiry, strike, tick_size,
lot_size, instrument_type, segment, exchange``. :func:`read_master` maps each row of the segments
FeedPool serves to FeedPool's (OpenAlgo's) symbol:

- equities keep Kite's trading symbol (``SBIN``);
- indices (segment ``INDICES``) go to NSE_INDEX or BSE_INDEX under OpenAlgo's names
  (``NIFTY 50`` -> ``NIFTY``, ``NIFTY BANK`` -> ``BANKNIFTY``), others without spaces;
- futures and options are rebuilt from name, expiry and strike: ``NIFTY29DEC26FUT``,
  ``NIFTY29DEC2626000CE``, whatever Kite's weekly or monthly trading symbol looks like.

:func:`write_master` writes instruments in the same format, for the exchange simulator to serve.
Its tokens follow Kite's rule: the exchange token times 256 plus the segment code.
"""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Iterable

from backend.brokers.zerodha.protocol import INDICES, SEGMENTS
from backend.instruments.master import Instrument, MasterFormatError

URL = "https://api.kite.trade/instruments"
PATH = "/instruments"
COLUMNS = (
    "instrument_token",
    "exchange_token",
    "tradingsymbol",
    "name",
    "last_price",
    "expiry",
    "strike",
    "tick_size",
    "lot_size",
    "instrument_type",
    "segment",
    "exchange",
)

# Kite's exchange -> FeedPool's, for every row but the indices.
_EXCHANGES = {"NSE": "NSE", "BSE": "BSE", "NFO": "NFO", "BFO": "BFO", "MCX": "MCX", "CDS": "CDS"}
_INDEX_EXCHANGES = {"NSE": "NSE_INDEX", "BSE": "BSE_INDEX"}
# Kite's index names whose OpenAlgo symbol is not the name without spaces.
INDEX_SYMBOLS = {
    "NIFTY 50": "NIFTY",
    "NIFTY BANK": "BANKNIFTY",
    "NIFTY FIN SERVICE": "FINNIFTY",
    "NIFTY MID SELECT": "MIDCPNIFTY",
    "NIFTY NEXT 50": "NIFTYNXT50",
    "INDIA VIX": "INDIAVIX",
    "SNSX50": "SENSEX50",
}
_INDEX_NAMES = {symbol: name for name, symbol in INDEX_SYMBOLS.items()}
_DERIVATIVE_TYPES = ("FUT", "CE", "PE")
_SEGMENT_CODES = {
    "NSE": SEGMENTS["nse"],
    "BSE": SEGMENTS["bse"],
    "NFO": SEGMENTS["nfo"],
    "BFO": SEGMENTS["bfo"],
    "MCX": SEGMENTS["mcx"],
    "CDS": SEGMENTS["cds"],
    "NSE_INDEX": INDICES,
    "BSE_INDEX": INDICES,
}


def strike_text(strike: float) -> str:
    """A strike as OpenAlgo writes it in a symbol: ``26000``, ``83.25``."""
    return f"{strike:f}".rstrip("0").rstrip(".")


def _expiry(text: str) -> str:
    """Kite's ``2026-12-29`` as ``29DEC2026``, the form every FeedPool master uses."""
    if not text:
        return ""
    return datetime.date.fromisoformat(text).strftime("%d%b%Y").upper()


def kite_symbol(row: dict[str, str], exchange: str, expiry: str) -> str:
    """FeedPool's (OpenAlgo's) symbol for a Kite instruments row."""
    symbol = row["tradingsymbol"].strip()
    if exchange.endswith("_INDEX"):
        return INDEX_SYMBOLS.get(symbol, symbol.upper().replace(" ", ""))
    kind = row["instrument_type"]
    if kind not in _DERIVATIVE_TYPES or not expiry:
        return symbol
    base = row["name"].strip() + expiry[:5] + expiry[-2:]
    if kind == "FUT":
        return base + "FUT"
    return base + strike_text(float(row["strike"])) + kind


def read_master(data: bytes, source: str) -> list[Instrument]:
    """Instruments from Kite's instruments CSV; rows of other segments are skipped."""
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        missing = set(COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise MasterFormatError(f"{source}: missing columns {', '.join(sorted(missing))}")
        return [i for line, row in enumerate(reader, start=2) if (i := _row(row, source, line))]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise MasterFormatError(f"{source}: not Kite's instruments CSV ({exc})") from None


def _row(row: dict[str, str], source: str, line: int) -> Instrument | None:
    try:
        kite_exchange = row["exchange"]
        if row["segment"] == "INDICES":
            exchange = _INDEX_EXCHANGES.get(kite_exchange)
        else:
            exchange = _EXCHANGES.get(kite_exchange)
        if exchange is None:
            return None
        expiry = _expiry(row["expiry"])
        return Instrument(
            token=str(int(row["instrument_token"])),
            symbol=kite_symbol(row, exchange, expiry),
            name=row["name"],
            exchange=exchange,
            instrument_type=row["instrument_type"],
            lot_size=int(float(row["lot_size"] or 1)),
            tick_size=float(row["tick_size"] or 0),
            expiry=expiry,
            strike=float(row["strike"] or 0),
            price=float(row["last_price"] or 0),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MasterFormatError(f"{source}:{line}: bad or missing {exc}") from None


def write_master(instruments: Iterable[Instrument]) -> bytes:
    """``instruments`` as Kite's CSV, numbered in order: what :func:`read_master` reads back."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for number, instrument in enumerate(instruments, start=1):
        writer.writerow(_kite_row(number, instrument))
    return out.getvalue().encode()


def _kite_row(exchange_token: int, instrument: Instrument) -> list[object]:
    exchange = instrument.exchange
    index = exchange.endswith("_INDEX")
    kind = _kite_type(instrument)
    symbol = instrument.symbol
    if index:
        symbol = _INDEX_NAMES.get(symbol, symbol)
    expiry = ""
    if instrument.expiry:
        expiry = datetime.datetime.strptime(instrument.expiry, "%d%b%Y").date().isoformat()
    if index:
        segment = "INDICES"
    elif kind == "EQ":
        segment = exchange
    else:
        segment = f"{exchange}-{'FUT' if kind == 'FUT' else 'OPT'}"
    return [
        exchange_token * 256 + _SEGMENT_CODES[exchange],
        exchange_token,
        symbol,
        instrument.symbol if index else instrument.name,
        str(instrument.price),
        expiry,
        strike_text(instrument.strike),
        str(instrument.tick_size),
        instrument.lot_size,
        kind,
        segment,
        exchange.removesuffix("_INDEX"),
    ]


def _kite_type(instrument: Instrument) -> str:
    """Kite's instrument type: ``EQ``, ``FUT``, ``CE`` or ``PE``."""
    kind = instrument.instrument_type
    if kind.startswith("FUT"):
        return "FUT"
    if kind.startswith("OPT"):
        return instrument.symbol[-2:]
    return "EQ"
