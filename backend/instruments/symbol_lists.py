"""Turning text and files into watchlist entries, and saying what could not be understood.

Accepted input, one symbol per line:

- ``EXCHANGE:SYMBOL`` (``NSE:SBIN``), optionally followed by a mode (``NSE:SBIN,LTP``);
- ``SYMBOL,EXCHANGE`` (also with ``;`` or a tab), optionally followed by a mode;
- a bare ``SYMBOL`` when the caller names a default exchange (typing, pasting);
- CSV with a header row naming ``symbol`` and ``exchange`` columns in any letter case, and
  optionally ``mode``; other columns are ignored.

Modes are ``LTP``, ``Quote``, ``Depth`` in any case, or ``1``, ``2``, ``3``; the default is Quote.
Blank lines and lines starting with ``#`` are skipped. No Qt here.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from backend.instruments.master import EXCHANGES

MODES = {"LTP": 1, "QUOTE": 2, "DEPTH": 3, "1": 1, "2": 2, "3": 3}
MODE_NAMES = {1: "LTP", 2: "Quote", 3: "Depth"}
DEFAULT_MODE = 2
MAX_FILE_BYTES = 5_000_000
_SNIFF_BYTES = 8192

_SYMBOL = r"[A-Za-z0-9][A-Za-z0-9&._-]*"
_NAME = r"[A-Za-z_]+"
_MODE = r"(?:\s*[,;\t ]\s*(?P<mode>\w+))?"
_EXCHANGE_FIRST = re.compile(rf"(?P<exchange>{_NAME})\s*:\s*(?P<symbol>{_SYMBOL}){_MODE}")
_SYMBOL_FIRST = re.compile(rf"(?P<symbol>{_SYMBOL})\s*[,;\t]\s*(?P<exchange>{_NAME}){_MODE}")
_BARE = re.compile(rf"(?P<symbol>{_SYMBOL})")


@dataclass(frozen=True, slots=True)
class WatchEntry:
    """A symbol to watch on an exchange in a mode (1 LTP, 2 Quote, 3 Depth)."""

    symbol: str
    exchange: str
    mode: int = DEFAULT_MODE

    @property
    def key(self) -> tuple[str, str]:
        """What makes two entries the same watchlist row: a symbol takes one slot in any mode."""
        return (self.symbol, self.exchange)

    @property
    def label(self) -> str:
        return f"{self.exchange}:{self.symbol}"


@dataclass
class ParseResult:
    """What came out of some input: entries in order, lines not understood, or one error."""

    entries: list[WatchEntry] = field(default_factory=list)
    not_understood: list[str] = field(default_factory=list)
    error: str | None = None


class EntryError(ValueError):
    """A line that names a symbol but says something FeedPool cannot use."""


def parse_mode(text: str | int | None, default: int = DEFAULT_MODE) -> int:
    """A mode number from ``LTP``/``Quote``/``Depth`` or 1/2/3; empty gives ``default``."""
    name = str(text if text is not None else "").strip().upper()
    if not name:
        return default
    if name not in MODES:
        raise EntryError(f"unknown mode {text!r} (use LTP, Quote, Depth or 1, 2, 3)")
    return MODES[name]


def make_entry(symbol: str, exchange: str, mode: str | int | None, default_mode: int) -> WatchEntry:
    """An entry with upper-case names, or :class:`EntryError` naming what is wrong."""
    exchange = exchange.strip().upper()
    if exchange not in EXCHANGES:
        raise EntryError(f"unknown exchange {exchange!r}")
    symbol = symbol.strip().upper()
    if not re.fullmatch(_SYMBOL, symbol):
        raise EntryError(f"not a symbol: {symbol!r}")
    return WatchEntry(symbol, exchange, parse_mode(mode, default_mode))


def _problem(number: int, line: str, reason: str = "") -> str:
    shown = line if len(line) <= 60 else line[:57] + "..."
    return f"line {number}: {shown!r}" + (f" ({reason})" if reason else "")


def parse_line(line: str, default_exchange: str | None, default_mode: int) -> WatchEntry:
    """One line in any accepted form; :class:`EntryError` if it is none of them."""
    text = line.strip()
    for pattern in (_EXCHANGE_FIRST, _SYMBOL_FIRST):
        match = pattern.fullmatch(text)
        if match:
            return make_entry(match["symbol"], match["exchange"], match["mode"], default_mode)
    if default_exchange and _BARE.fullmatch(text):
        return make_entry(text, default_exchange, None, default_mode)
    raise EntryError("")


def _header(line: str) -> tuple[str, dict[str, int]] | None:
    """The delimiter and column positions if ``line`` is a CSV header naming symbol and exchange."""
    delimiter = max(",;\t", key=line.count)
    names = [name.strip().lower() for name in next(csv.reader([line], delimiter=delimiter))]
    if "symbol" in names and "exchange" in names:
        return delimiter, {
            name: names.index(name) for name in ("symbol", "exchange", "mode") if name in names
        }
    return None


def _parse_csv(
    lines: list[str], start: int, delimiter: str, columns: dict[str, int], default_mode: int
) -> ParseResult:
    result = ParseResult()
    reader = csv.reader(lines[start + 1 :], delimiter=delimiter)
    for offset, row in enumerate(reader, start=start + 2):
        if not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
            continue
        cells = {name: row[index] if index < len(row) else "" for name, index in columns.items()}
        line = delimiter.join(row)
        if not cells["symbol"].strip() or not cells["exchange"].strip():
            result.not_understood.append(_problem(offset, line, "symbol or exchange missing"))
            continue
        try:
            result.entries.append(
                make_entry(cells["symbol"], cells["exchange"], cells.get("mode"), default_mode)
            )
        except EntryError as exc:
            result.not_understood.append(_problem(offset, line, str(exc)))
    return result


def parse_text(
    text: str, default_exchange: str | None = None, default_mode: int = DEFAULT_MODE
) -> ParseResult:
    """Entries from text: CSV with a header, or one symbol per line."""
    lines = text.splitlines()
    first = next(
        (i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")),
        None,
    )
    if first is None:
        return ParseResult()
    header = _header(lines[first])
    if header:
        return _parse_csv(lines, first, *header, default_mode)
    result = ParseResult()
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            result.entries.append(parse_line(line, default_exchange, default_mode))
        except EntryError as exc:
            result.not_understood.append(_problem(number, line.strip(), str(exc)))
    return result


def read_text_file(path: Path) -> str:
    """A file's text; :class:`EntryError` saying why it is not a usable text file."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise EntryError(f"{path.name} is too large ({size:,} bytes; at most 5 MB)")
        data = path.read_bytes()
    except OSError as exc:
        raise EntryError(f"{path.name} cannot be read: {exc.strerror or exc}") from None
    if not data.strip():
        raise EntryError(f"{path.name} is empty")
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise EntryError(f"{path.name} is not a text file (it holds binary data)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise EntryError(f"{path.name} is not a UTF-8 text file") from None


def parse_file(path: Path, default_mode: int = DEFAULT_MODE) -> ParseResult:
    """Entries from a ``.csv`` or ``.txt`` file (any other name is read like ``.txt``)."""
    try:
        text = read_text_file(path)
    except EntryError as exc:
        return ParseResult(error=str(exc))
    result = parse_text(text, default_mode=default_mode)
    if path.suffix.lower() == ".csv" and not result.entries and result.not_understood:
        result.error = (
            f"{path.name} has no symbols: a CSV needs a header row naming its symbol and"
            " exchange columns"
        )
    return result
