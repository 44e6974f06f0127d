"""Angel One's instrument master: its scrip-master JSON, read into FeedPool's instruments.

Angel publishes ``OpenAPIScripMaster.json`` daily: a JSON list of objects with ``token, symbol,
name, expiry, strike, lotsize, instrumenttype, exch_seg, tick_size``. :func:`read_master` maps
each row to FeedPool's (OpenAlgo's) symbol; :func:`write_master` writes instruments in the same
format, for the exchange simulator to serve.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from backend.instruments.master import Instrument, MasterFormatError

URL = "https://margincalculator.angelbroking.com/OpenAPI_File/files/OpenAPIScripMaster.json"
PATH = "/OpenAPI_File/files/OpenAPIScripMaster.json"

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


def read_master(data: bytes, source: str) -> list[Instrument]:
    """Instruments from Angel One's scrip-master JSON; rows of other segments are skipped.

    Angel gives tick sizes and strikes in paise (currency option strikes in 10^-7 rupee); they
    become rupees here.
    """
    path = source
    try:
        rows = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
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


def write_master(instruments: Iterable[Instrument]) -> bytes:
    """``instruments`` as Angel's scrip master: what :func:`read_master` reads back unchanged."""
    return orjson.dumps([_row(i) for i in instruments])


def _row(instrument: Instrument) -> dict[str, str]:
    exchange = instrument.exchange
    segment = exchange.removesuffix("_INDEX")
    symbol, name = instrument.symbol, instrument.name
    if exchange.endswith("_INDEX"):
        symbol, name = instrument.name, instrument.symbol  # Angel names an index by its symbol
    elif exchange == "NSE":
        symbol += "-EQ"
    strike_scale = 10**7 if instrument.instrument_type in _CURRENCY_OPTIONS else 100
    return {
        "token": instrument.token,
        "symbol": symbol,
        "name": name,
        "expiry": instrument.expiry,
        "strike": f"{instrument.strike * strike_scale if instrument.strike else -1:f}",
        "lotsize": str(instrument.lot_size),
        "instrumenttype": instrument.instrument_type,
        "exch_seg": segment,
        "tick_size": f"{instrument.tick_size * 100:f}",
    }
