"""The instrument master: every tradable symbol FeedPool knows, with its broker token.

Two formats load into one :class:`InstrumentMaster`:

- the bundled CSV (``resources/instruments.csv``), columns ``token, symbol, name, exchange,
  instrument_type, lot_size, tick_size, expiry, strike, price``; ``price`` is a reference price the
  exchange simulator starts its random walk from;
- Angel One's published scrip master (``OpenAPIScripMaster.json``), a JSON list of objects with
  ``token, symbol, name, expiry, strike, lotsize, instrumenttype, exch_seg, tick_size``.

Symbols are FeedPool's (OpenAlgo's) symbols: ``SBIN`` on NSE, ``NIFTY`` on NSE_INDEX. Lookups by
``(symbol, exchange)`` and by ``(exchange type, token)`` are dictionary hits.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from backend.resources import resource_path
from backend.smartstream.protocol import EXCHANGE_TYPES

EXCHANGES = tuple(EXCHANGE_TYPES)
CSV_COLUMNS = (
    "token",
    "symbol",
    "name",
    "exchange",
    "instrument_type",
    "lot_size",
    "tick_size",
    "expiry",
    "strike",
    "price",
)


class UnknownSymbolError(KeyError):
    """A symbol the instrument master does not hold."""

    def __init__(self, symbol: str, exchange: str) -> None:
        super().__init__(f"unknown symbol {symbol!r} on exchange {exchange!r}")
        self.symbol = symbol
        self.exchange = exchange

    def __str__(self) -> str:
        return str(self.args[0])


class MasterFormatError(ValueError):
    """An instrument master file FeedPool cannot read."""


@dataclass(frozen=True, slots=True)
class Instrument:
    token: str
    symbol: str
    name: str
    exchange: str
    instrument_type: str
    lot_size: int
    tick_size: float  # rupees
    expiry: str = ""  # e.g. 30DEC2026, empty for cash instruments
    strike: float = 0.0  # rupees, 0 unless an option
    price: float = 0.0  # reference price in rupees, 0 when unknown

    @property
    def exchange_type(self) -> int:
        return EXCHANGE_TYPES[self.exchange]


class InstrumentMaster:
    """Instruments indexed by ``(symbol, exchange)`` and by ``(exchange type, token)``."""

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self._by_symbol: dict[tuple[str, str], Instrument] = {}
        self._by_token: dict[tuple[int, str], Instrument] = {}
        for instrument in instruments:
            self._by_symbol[instrument.symbol, instrument.exchange] = instrument
            self._by_token[instrument.exchange_type, instrument.token] = instrument

    def __len__(self) -> int:
        return len(self._by_symbol)

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._by_symbol.values())

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._by_symbol

    def get(self, symbol: str, exchange: str) -> Instrument:
        """The instrument, or :class:`UnknownSymbolError` naming what was asked for."""
        try:
            return self._by_symbol[symbol, exchange]
        except KeyError:
            raise UnknownSymbolError(symbol, exchange) from None

    def find(self, symbol: str, exchange: str) -> Instrument | None:
        return self._by_symbol.get((symbol, exchange))

    def by_token(self, exchange_type: int, token: str) -> Instrument | None:
        return self._by_token.get((exchange_type, token))


def read_csv_master(path: Path) -> list[Instrument]:
    """Instruments from a CSV in the bundled format."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return _read_csv_rows(path, csv.DictReader(handle))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise MasterFormatError(f"{path}: not a CSV instrument master ({exc})") from None


def _read_csv_rows(path: Path, reader: csv.DictReader) -> list[Instrument]:
    missing = set(CSV_COLUMNS) - set(reader.fieldnames or ())
    if missing:
        raise MasterFormatError(f"{path}: missing columns {', '.join(sorted(missing))}")
    instruments = []
    for line, row in enumerate(reader, start=2):
        try:
            instruments.append(
                Instrument(
                    token=row["token"],
                    symbol=row["symbol"],
                    name=row["name"],
                    exchange=row["exchange"],
                    instrument_type=row["instrument_type"],
                    lot_size=int(row["lot_size"]),
                    tick_size=float(row["tick_size"]),
                    expiry=row["expiry"],
                    strike=float(row["strike"] or 0),
                    price=float(row["price"] or 0),
                )
            )
        except (TypeError, ValueError) as exc:
            raise MasterFormatError(f"{path}:{line}: {exc}") from None
        if instruments[-1].exchange not in EXCHANGE_TYPES:
            raise MasterFormatError(f"{path}:{line}: unknown exchange {row['exchange']!r}")
    return instruments


# Angel One's exch_seg -> FeedPool exchange; index rows (instrumenttype AMXIDX) go to *_INDEX.
_ANGEL_SEGMENTS = {
    "NSE": "NSE",
    "BSE": "BSE",
    "NFO": "NFO",
    "BFO": "BFO",
    "MCX": "MCX",
    "CDS": "CDS",
}
_ANGEL_INDEX_SEGMENTS = {"NSE": "NSE_INDEX", "BSE": "BSE_INDEX"}


# Angel's cash-market series suffixes that FeedPool drops (SBIN-EQ -> SBIN); other series stay.
_CASH_SERIES = ("-EQ", "-BE", "-MF", "-SG")
# Segments whose Angel trading symbols differ from OpenAlgo's; FeedPool rebuilds their derivatives.
_REBUILT_SEGMENTS = ("MCX", "CDS")
# Currency options, whose strikes Angel gives in 10^-7 rupee instead of paise.
_CURRENCY_OPTIONS = ("OPTCUR", "OPTIRC")


def angel_strike(row: dict[str, str], exchange: str) -> float:
    """The strike of an Angel One scrip-master row in rupees, 0 unless an option."""
    scale = 10**7 if exchange == "CDS" and row["instrumenttype"] in _CURRENCY_OPTIONS else 100
    return max(float(row["strike"] or 0), 0.0) / scale


def angel_symbol(row: dict[str, str], exchange: str) -> str:
    """FeedPool's (OpenAlgo's) symbol for an Angel One scrip-master row.

    Cash equities drop Angel's series suffix (``SBIN-EQ`` -> ``SBIN``, while BSE's
    ``BAJAJ-AUTO`` stays whole); indices take Angel's ``name`` without spaces (``NIFTY``,
    ``INDIAVIX``); MCX and CDS derivatives are rebuilt from name, expiry and strike
    (``USDINR26DECFUT`` -> ``USDINR29DEC26FUT``, ``USDINR29DEC2683.25CE``); NFO and BFO keep
    Angel's trading symbol, which already reads like ``NIFTY29DEC2626000CE``.
    """
    symbol = row["symbol"].strip()
    if exchange in ("NSE", "BSE"):
        series = next((s for s in _CASH_SERIES if symbol.endswith(s)), "")
        return symbol.removesuffix(series)
    if exchange in ("NSE_INDEX", "BSE_INDEX"):
        return row["name"].strip().upper().replace(" ", "")
    expiry = (row["expiry"] or "").strip().upper()
    if exchange in _REBUILT_SEGMENTS and len(expiry) == 9:
        base = row["name"].strip() + expiry[:5] + expiry[-2:]
        kind = row["instrumenttype"][:3]
        if kind == "FUT":
            return base + "FUT"
        if kind == "OPT":
            strike = f"{angel_strike(row, exchange):f}".rstrip("0").rstrip(".")
            return base + strike + symbol[-2:]
    return symbol


def read_angel_master(path: Path) -> list[Instrument]:
    """Instruments from Angel One's scrip-master JSON; rows of other segments are skipped.

    Angel gives tick sizes and strikes in paise (currency option strikes in 10^-7 rupee); they
    become rupees here.
    """
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MasterFormatError(f"{path}: not a JSON scrip master ({exc})") from None
    if not isinstance(rows, list):
        raise MasterFormatError(f"{path}: expected a JSON list of scrip objects")
    instruments = []
    for index, row in enumerate(rows):
        try:
            segment = row["exch_seg"]
            instrument_type = row["instrumenttype"]
            if instrument_type == "AMXIDX" and segment in _ANGEL_INDEX_SEGMENTS:
                exchange = _ANGEL_INDEX_SEGMENTS[segment]
            elif segment in _ANGEL_SEGMENTS:
                exchange = _ANGEL_SEGMENTS[segment]
            else:
                continue
            instruments.append(
                Instrument(
                    token=str(row["token"]),
                    symbol=angel_symbol(row, exchange),
                    name=row["name"],
                    exchange=exchange,
                    instrument_type=instrument_type or ("EQ" if exchange in ("NSE", "BSE") else ""),
                    lot_size=int(float(row["lotsize"] or 1)),
                    tick_size=float(row["tick_size"] or 0) / 100,
                    expiry=row["expiry"] or "",
                    strike=angel_strike(row, exchange),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MasterFormatError(f"{path}: scrip #{index}: bad or missing {exc}") from None
    return instruments


def load_master(path: Path | str | None = None) -> InstrumentMaster:
    """The master at ``path`` (Angel One JSON if ``.json``, else CSV), or the bundled one."""
    path = Path(path) if path else resource_path("instruments.csv")
    if not path.is_file():
        raise MasterFormatError(f"instrument master not found: {path}")
    reader = read_angel_master if path.suffix.lower() == ".json" else read_csv_master
    return InstrumentMaster(reader(path))
