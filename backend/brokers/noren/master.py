"""The Noren vendors' symbol masters, read into FeedPool's instruments and written back.

Shoonya and Zebu publish one zip per exchange, ``<EXCH>_symbols.txt.zip``, holding
``<EXCH>_symbols.txt``: comma-separated with a header row, each row ending in a comma. NSE and BSE
have the columns ``Exchange, Token, LotSize, Symbol, TradingSymbol, Instrument, TickSize``; the
derivative exchanges add ``Expiry`` (``18-AUG-2026``), ``OptionType`` (``CE``, ``PE``, ``XX``
for futures) and ``StrikePrice`` (rupees), CDS ``Precision`` and ``Multiplier``, MCX ``GNGD``.
Flattrade publishes CSV files (:data:`FLATTRADE_FILES`) with ``Token, Lotsize, Symbol,
Tradingsymbol, Instrument, Expiry, Strike, Optiontype``. Columns are found by name, whatever
their case, so one reader reads both; a file without an ``Exchange`` column takes its exchange
from its name.

Each row takes FeedPool's (OpenAlgo's) symbol, as OpenAlgo maps the Noren masters:

- equities drop the series suffix of the trading symbol (``SBIN-EQ`` and ``SBIN-BE`` ->
  ``SBIN``); BSE's trading symbols have none;
- indices (``Instrument`` ``INDEX``) go to NSE_INDEX or BSE_INDEX under their trading symbol in
  capitals without spaces or hyphens, with OpenAlgo's names where they differ
  (:data:`INDEX_SYMBOLS`: ``NIFTY INDEX`` and ``Nifty 50`` -> ``NIFTY``, ``NIFTY BANK`` ->
  ``BANKNIFTY``, and Dhan's table for the others);
- futures and options are rebuilt from the underlying (``Symbol``), the expiry, the strike and
  the option type: ``NIFTY18AUG26FUT``, ``NIFTY18AUG2618550CE`` (the vendor's own trading
  symbol is ``NIFTY18AUG26C18550``).

Chosen: tick sizes are read as rupees, as the published files show them (OpenAlgo divides them by
100, which those files contradict); Flattrade's files have none, so 0.05 (CDS 0.0025) is taken,
as OpenAlgo does. Exchanges FeedPool has none for (NCX, BCD) are skipped. The token is the
vendor's, the ``TOKEN`` of the feed's ``EXCHANGE|TOKEN`` keys.

A download of several files is read from a zip holding them under their published names (the
vendor's own zips nested in it); one published file is read as it is.
:func:`write_master` writes that zip of the vendor's files, which the simulator serves.
"""

from __future__ import annotations

import csv
import datetime
import functools
import io
import posixpath
import zipfile
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import urlsplit

from backend.brokers.dhan.master import index_symbol as dhan_index_symbol
from backend.brokers.noren.vendors import NOREN_EXCHANGES, Vendor
from backend.brokers.zerodha.master import strike_text
from backend.instruments.master import Instrument, MasterFormatError

NOREN_SUFFIX = "_symbols.txt"
_CASH = ("Exchange", "Token", "LotSize", "Symbol", "TradingSymbol", "Instrument", "TickSize")
_DERIVATIVES = ("Expiry", "Instrument", "OptionType", "StrikePrice", "TickSize")
#: The columns of each ``<EXCH>_symbols.txt``, as the vendors publish them.
NOREN_COLUMNS = {
    "NSE": _CASH,
    "BSE": _CASH,
    "NFO": ("Exchange", "Token", "LotSize", "Symbol", "TradingSymbol", *_DERIVATIVES),
    "BFO": ("Exchange", "Token", "LotSize", "Symbol", "TradingSymbol", *_DERIVATIVES),
    "CDS": (
        "Exchange",
        "Token",
        "LotSize",
        "Precision",
        "Multiplier",
        "Symbol",
        "TradingSymbol",
        *_DERIVATIVES,
    ),
    "MCX": ("Exchange", "Token", "LotSize", "GNGD", "Symbol", "TradingSymbol", *_DERIVATIVES),
}
FLATTRADE_COLUMNS = (
    "Token",
    "Lotsize",
    "Symbol",
    "Tradingsymbol",
    "Instrument",
    "Expiry",
    "Strike",
    "Optiontype",
)
#: Flattrade's files, the exchange of each and the instrument kinds it holds.
FLATTRADE_FILES = {
    "NSE_Equity.csv": ("NSE", ("EQ", "BE", "INDEX")),
    "Nfo_Index_Derivatives.csv": ("NFO", ("FUTIDX", "OPTIDX")),
    "Nfo_Equity_Derivatives.csv": ("NFO", ("FUTSTK", "OPTSTK")),
    "Currency_Derivatives.csv": ("CDS", ("FUTCUR", "OPTCUR")),
    "Commodity.csv": ("MCX", ("FUTCOM", "OPTFUT", "FUTIDX")),
    "BSE_Equity.csv": ("BSE", ("EQ", "BE", "INDEX")),
    "Bfo_Index_Derivatives.csv": ("BFO", ("FUTIDX", "OPTIDX")),
    "Bfo_Equity_Derivatives.csv": ("BFO", ("FUTSTK", "OPTSTK")),
}
#: Tick sizes where a file gives none (Flattrade's).
DEFAULT_TICK = {"CDS": 0.0025}
#: Index names (capitals, no spaces or hyphens) whose OpenAlgo symbol differs, past Dhan's.
INDEX_SYMBOLS = {
    "NIFTYINDEX": "NIFTY",
    "NIFTY50": "NIFTY",
    "NIFTYBANK": "BANKNIFTY",
    "NIFTYFINSERVICE": "FINNIFTY",
    "NIFTYFINANCIALSERVICES": "FINNIFTY",
    "NIFTYMIDSELECT": "MIDCPNIFTY",
    "NIFTYMIDCAPSELECT": "MIDCPNIFTY",
}
_SERIES = ("-EQ", "-BE")
_REQUIRED = ("token", "lotsize", "symbol", "tradingsymbol", "instrument")
_FUTURE_OPTION_TYPES = ("XX", "")
#: The expiry as the files write it.
EXPIRY_FORMAT = "%d-%b-%Y"


def url(vendor: Vendor) -> str:
    """Where ``vendor`` publishes its master: the first of its files (NSE's)."""
    return f"{vendor.master_root}/{vendor.master_files[0]}"


def path(vendor: Vendor) -> str:
    """The path of :func:`url`: where the simulator serves ``vendor``'s master."""
    return urlsplit(url(vendor)).path


def index_symbol(trading_symbol: str) -> str:
    """FeedPool's (OpenAlgo's) symbol for one of the vendors' index names."""
    squeezed = dhan_index_symbol(trading_symbol)
    return INDEX_SYMBOLS.get(squeezed, squeezed)


@functools.cache
def _expiry(text: str) -> str:
    """The files' ``18-AUG-2026`` as ``18AUG2026``, the form every FeedPool master uses."""
    return datetime.datetime.strptime(text.strip(), EXPIRY_FORMAT).strftime("%d%b%Y").upper()


@functools.cache
def _written_expiry(expiry: str) -> tuple[str, str]:
    """FeedPool's ``18AUG2026`` as the trading symbols write it (``18AUG26``) and as the files'
    ``Expiry`` does (``18-AUG-2026``)."""
    day = datetime.datetime.strptime(expiry, "%d%b%Y")
    return day.strftime("%d%b%y").upper(), day.strftime(EXPIRY_FORMAT).upper()


def read_master(data: bytes, source: str) -> list[Instrument]:
    """Instruments from one of the vendors' published files, or a zip holding several;
    ``source`` names it in errors. Rows of exchanges FeedPool has none for are skipped."""
    instruments: list[Instrument] = []
    for name, body in _files(data, posixpath.basename(urlsplit(source).path), source):
        instruments.extend(_read_file(body, name, f"{source}: {name}"))
    return instruments


def _files(data: bytes, name: str, source: str) -> Iterator[tuple[str, bytes]]:
    """The files of ``data`` (named ``name``): the members of a zip, nested zips opened."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        yield name, data
        return
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [(m, archive.read(m)) for m in archive.namelist() if not m.endswith("/")]
    except (zipfile.BadZipFile, OSError) as exc:
        raise MasterFormatError(f"{source}: a damaged zip ({exc})") from None
    if not members:
        raise MasterFormatError(f"{source}: an empty zip")
    for member, body in members:
        yield from _files(body, posixpath.basename(member), source)


def _exchange_of_file(name: str) -> str:
    """The exchange a file's name says (``NSE_symbols.txt``, ``NSE_Equity.csv``); empty if none."""
    if name.endswith(NOREN_SUFFIX):
        return name.removesuffix(NOREN_SUFFIX)
    return FLATTRADE_FILES.get(name, ("", ()))[0]


def _read_file(data: bytes, name: str, where: str) -> list[Instrument]:
    try:
        rows = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        header = [column.strip().lower() for column in next(rows, [])]
        missing = [column for column in _REQUIRED if column not in header]
        if missing:
            raise MasterFormatError(
                f"{where}: not a Noren symbol master (missing columns {', '.join(missing)})"
            )
        if "strike" in header and "strikeprice" not in header:
            header[header.index("strike")] = "strikeprice"
        exchange_at = header.index("exchange") if "exchange" in header else None
        file_exchange = _exchange_of_file(name)
        if exchange_at is None and not file_exchange:
            raise MasterFormatError(f"{where}: no Exchange column, and the file name names none")
        instruments = []
        for line, row in enumerate(rows, start=2):
            if not any(field.strip() for field in row):
                continue
            fields = dict(zip(header, row, strict=False))
            exchange = row[exchange_at].strip() if exchange_at is not None else file_exchange
            try:
                found = _instrument(fields, exchange)
            except (KeyError, IndexError, ValueError) as exc:
                raise MasterFormatError(f"{where}:{line}: bad or missing {exc}") from None
            if found is not None:
                instruments.append(found)
        return instruments
    except (UnicodeDecodeError, csv.Error) as exc:
        raise MasterFormatError(f"{where}: not a Noren symbol master ({exc})") from None


def _instrument(fields: dict[str, str], exchange: str) -> Instrument | None:
    kind = fields["instrument"].strip()
    tick_text = fields.get("ticksize", "").strip()
    tick = float(tick_text) if tick_text else DEFAULT_TICK.get(exchange, 0.05)
    token, lot = fields["token"].strip(), int(float(fields["lotsize"] or 1))
    if not token.isdigit():
        raise ValueError(f"Token {token!r}")
    underlying, trading_symbol = fields["symbol"].strip(), fields["tradingsymbol"].strip()
    if exchange in ("NSE", "BSE"):
        if kind == "INDEX":
            symbol = index_symbol(trading_symbol)
            return Instrument(token, symbol, trading_symbol, f"{exchange}_INDEX", kind, lot, tick)
        symbol = next(
            (trading_symbol.removesuffix(s) for s in _SERIES if trading_symbol.endswith(s)),
            trading_symbol,
        )
        return Instrument(token, symbol, underlying, exchange, kind, lot, tick)
    if exchange not in NOREN_COLUMNS:
        return None
    expiry = _expiry(fields["expiry"])
    option_type = fields["optiontype"].strip()
    base = underlying + expiry[:5] + expiry[-2:]
    if option_type in _FUTURE_OPTION_TYPES or kind.startswith("FUT"):
        return Instrument(token, base + "FUT", underlying, exchange, kind, lot, tick, expiry)
    if option_type not in ("CE", "PE"):
        raise ValueError(f"OptionType {option_type!r}")
    strike = float(fields["strikeprice"])
    symbol = base + strike_text(strike) + option_type
    return Instrument(token, symbol, underlying, exchange, kind, lot, tick, expiry, strike)


def write_master(vendor: Vendor, instruments: Iterable[Instrument]) -> bytes:
    """``instruments`` as ``vendor``'s files, in a zip under their published names: what
    :func:`read_master` reads back under the same symbols."""
    by_file: dict[str, list[Instrument]] = {name: [] for name in vendor.master_files}
    for instrument in instruments:
        by_file[_file_of(vendor, instrument)].append(instrument)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, listed in by_file.items():
            if vendor.master_format == "flattrade":
                archive.writestr(name, _csv(FLATTRADE_COLUMNS, listed, trailing=False))
                continue
            exchange = name.removesuffix(NOREN_SUFFIX + ".zip")
            text = _csv(NOREN_COLUMNS[exchange], listed, trailing=True)
            inner = io.BytesIO()
            with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as one:
                one.writestr(exchange + NOREN_SUFFIX, text)
            archive.writestr(name, inner.getvalue())
    return out.getvalue()


def writer(vendor: Vendor) -> Callable[[Iterable[Instrument]], bytes]:
    """:func:`write_master` for ``vendor``: the ``write_master`` of its ``Broker``."""
    return functools.partial(write_master, vendor)


def _noren_exchange(instrument: Instrument) -> str:
    return instrument.exchange.removesuffix("_INDEX")


def _noren_kind(instrument: Instrument) -> str:
    """The ``Instrument`` column for one of FeedPool's instruments."""
    if instrument.exchange.endswith("_INDEX"):
        return "INDEX"
    kind = instrument.instrument_type
    if kind.startswith(("FUT", "OPT")):
        return "OPTFUT" if instrument.exchange == "MCX" and kind.startswith("OPT") else kind
    return "BE" if kind == "BE" else "EQ"


def _file_of(vendor: Vendor, instrument: Instrument) -> str:
    """The name of the file of ``vendor`` that lists ``instrument``."""
    exchange, kind = _noren_exchange(instrument), _noren_kind(instrument)
    if vendor.master_format == "noren":
        if exchange not in NOREN_EXCHANGES:
            raise ValueError(f"{vendor.label} publishes no master for {instrument.exchange}")
        return exchange + NOREN_SUFFIX + ".zip"
    for name, (file_exchange, kinds) in FLATTRADE_FILES.items():
        if file_exchange == exchange and kind in kinds:
            return name
    raise ValueError(f"{vendor.label} publishes no master for {kind} on {instrument.exchange}")


def _csv(columns: tuple[str, ...], instruments: list[Instrument], *, trailing: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    end = [""] if trailing else []
    writer.writerow([*columns, *end])
    keys = [column.lower() for column in columns]
    blanks = [""] * len(keys)
    for instrument in instruments:
        writer.writerow([*map(_row(instrument).get, keys, blanks), *end])
    return out.getvalue()


def _row(instrument: Instrument) -> dict[str, str]:
    """One instrument's fields, by lower-case column name."""
    exchange, kind = _noren_exchange(instrument), _noren_kind(instrument)
    fields = {
        "exchange": exchange,
        "token": instrument.token,
        "lotsize": str(instrument.lot_size),
        "instrument": kind,
        "ticksize": f"{instrument.tick_size:g}",
        "precision": "4" if exchange == "CDS" else "2",
        "multiplier": "1",
        "gngd": "1",
    }
    if kind == "INDEX":
        named = index_symbol(instrument.name) == instrument.symbol
        trading = instrument.name if named else instrument.symbol
        return fields | {"symbol": instrument.symbol, "tradingsymbol": trading}
    if not instrument.expiry:
        suffix = "" if exchange == "BSE" else f"-{kind}"
        return fields | {"symbol": instrument.symbol, "tradingsymbol": instrument.symbol + suffix}
    short, expiry = _written_expiry(instrument.expiry)
    dated = instrument.name + short
    future = kind.startswith("FUT")
    option_type = "XX" if future else instrument.symbol[-2:]
    strike = "-0.01" if future else strike_text(instrument.strike)
    trading = dated + ("F" if future else option_type[0] + strike)
    return fields | {
        "symbol": instrument.name,
        "tradingsymbol": trading,
        "expiry": expiry,
        "optiontype": option_type,
        "strikeprice": strike,
        "strike": strike,
    }
