"""The instrument master: every tradable symbol FeedPool knows, with its broker's token.

An :class:`InstrumentMaster` holds :class:`Instrument` records under FeedPool's (OpenAlgo's)
symbols: ``SBIN`` on NSE, ``NIFTY`` on NSE_INDEX, ``NIFTY29DEC2626000CE`` on NFO. Each broker
package reads its broker's published master into these records (the symbol mapping lives there);
this module reads the bundled CSV (``resources/instruments.csv``), the exchange simulator's master,
with columns ``token, symbol, name, exchange, instrument_type, lot_size, tick_size, expiry, strike,
price``; ``price`` is a reference price the simulator starts its random walk from.
"""

from __future__ import annotations

import csv
import io
import operator
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from backend.feed import EXCHANGES
from backend.runtime.resources import resource_path

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


class InstrumentMaster:
    """Instruments indexed by ``(symbol, exchange)``."""

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self._by_symbol = {(i.symbol, i.exchange): i for i in instruments}

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


def read_csv_master(data: bytes, source: str) -> list[Instrument]:
    """Instruments from a CSV in the bundled format; ``source`` names it in errors."""
    try:
        rows = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        return _read_csv_rows(source, rows)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise MasterFormatError(f"{source}: not a CSV instrument master ({exc})") from None


def _read_csv_rows(path: str, rows: Iterator[list[str]]) -> list[Instrument]:
    """The instruments of ``rows``, the first naming the columns (read by position: a
    :class:`csv.DictReader` takes twice as long over a master of 30,000 rows)."""
    header = next(rows, [])
    missing = set(CSV_COLUMNS) - set(header)
    if missing:
        raise MasterFormatError(f"{path}: missing columns {', '.join(sorted(missing))}")
    fields = operator.itemgetter(*(header.index(column) for column in CSV_COLUMNS))
    instruments = []
    for line, row in enumerate(rows, start=2):
        if not row:
            continue  # a blank line, as csv.DictReader skips them
        try:
            token, symbol, name, exchange, kind, lot, tick, expiry, strike, price = fields(row)
            instruments.append(
                Instrument(
                    token=token,
                    symbol=symbol,
                    name=name,
                    exchange=exchange,
                    instrument_type=kind,
                    lot_size=int(lot),
                    tick_size=float(tick),
                    expiry=expiry,
                    strike=float(strike or 0),
                    price=float(price or 0),
                )
            )
        except (IndexError, ValueError) as exc:
            problem = "missing fields" if isinstance(exc, IndexError) else exc
            raise MasterFormatError(f"{path}:{line}: {problem}") from None
        if exchange not in EXCHANGES:
            raise MasterFormatError(f"{path}:{line}: unknown exchange {exchange!r}")
    return instruments


def load_master(path: Path | str | None = None) -> InstrumentMaster:
    """The master in the bundled format at ``path``, or the bundled one itself."""
    path = Path(path) if path else resource_path("instruments.csv")
    if not path.is_file():
        raise MasterFormatError(f"instrument master not found: {path}")
    return InstrumentMaster(read_csv_master(path.read_bytes(), str(path)))
