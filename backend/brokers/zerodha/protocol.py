"""Zerodha Kite Connect WebSocket ("KiteTicker"): the wire format, both directions.

Requests are compact JSON text. Ticks arrive in binary big-endian messages: a uint16 packet count,
then each packet as a uint16 length and its bytes; a 1-byte message is a heartbeat. A packet's
length gives its kind, and each kind is one precompiled :class:`struct.Struct`, so a packet is
packed or unpacked in a single call:

=====  ===========  ==========================================================================
bytes  FeedPool     fields (uint32 unless noted)
=====  ===========  ==========================================================================
8      LTP          token, ltp
28     QUOTE        index quote: token, ltp, high, low, open, close, change (signed int32)
32     DEPTH        index full: index quote + exchange timestamp
44     QUOTE        token, ltp, last quantity, average price, volume, total buy quantity,
                    total sell quantity, open, high, low, close
184    DEPTH        quote + last trade time, oi, oi day high, oi day low, exchange timestamp,
                    then 10 levels of (quantity, price, uint16 orders, 2 pad bytes), buy first
=====  ===========  ==========================================================================

The token's low byte is its segment, which sets the price unit: 10^-7 rupee for CDS, 10^-4 for
BCD and NCO, paise elsewhere. Times are epoch seconds. :func:`normalise` turns a packet into
FeedPool's tick in rupees and milliseconds.

Both the adapter (decoding) and the exchange simulator (encoding) use this module, so the two
cannot drift apart.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from backend.brokers.codec import ProtocolError, json_object
from backend.feed import DEPTH, DEPTH_LEVELS, LTP, QUOTE, quote_change

# Kite's names for FeedPool's subscription modes.
MODE_LTP, MODE_QUOTE, MODE_FULL = "ltp", "quote", "full"
KITE_MODES = {LTP: MODE_LTP, QUOTE: MODE_QUOTE, DEPTH: MODE_FULL}
FEEDPOOL_MODES = {name: mode for mode, name in KITE_MODES.items()}

# Request actions ("a") and server text message types ("type").
SUBSCRIBE, UNSUBSCRIBE, SET_MODE = "subscribe", "unsubscribe", "mode"
ORDER, ERROR, MESSAGE = "order", "error", "message"

# Segment: the low byte of an instrument token.
SEGMENTS = {
    "nse": 1,
    "nfo": 2,
    "cds": 3,
    "bse": 4,
    "bfo": 5,
    "bcd": 6,
    "mcx": 7,
    "mcxsx": 8,
    "indices": 9,
    "nco": 12,
}
CDS, BCD, INDICES, NCO = 3, 6, 9, 12
_DIVISORS = {CDS: 10_000_000.0, BCD: 10_000.0, NCO: 10_000.0}

HEARTBEAT = b"\x00"
MAX_TOKEN = 2**32 - 1

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
LTP_PACKET = struct.Struct(">II")
INDEX_QUOTE_PACKET = struct.Struct(">IIIIIIi")
INDEX_FULL_PACKET = struct.Struct(">IIIIIIiI")
QUOTE_PACKET = struct.Struct(">" + "I" * 11)
FULL_PACKET = struct.Struct(">" + "I" * 16 + "IIH2x" * (2 * DEPTH_LEVELS))
_MODES_BY_SIZE = {
    LTP_PACKET.size: LTP,
    INDEX_QUOTE_PACKET.size: QUOTE,
    INDEX_FULL_PACKET.size: DEPTH,
    QUOTE_PACKET.size: QUOTE,
    FULL_PACKET.size: DEPTH,
}

assert tuple(_MODES_BY_SIZE) == (8, 28, 32, 44, 184)


def segment_of(token: int) -> int:
    """The segment code of an instrument token (its low byte)."""
    return token & 0xFF


def price_divisor(segment: int) -> float:
    """Wire units per rupee in ``segment``: 10^7 for CDS, 10^4 for BCD and NCO, else 100."""
    return _DIVISORS.get(segment, 100.0)


# Decoding, for the adapter.


def split(message: bytes) -> list[bytes]:
    """The packets in one binary message; none in a heartbeat.

    :class:`ProtocolError` if the message is empty, ends inside a packet or has bytes after the
    last one.
    """
    size = len(message)
    if size == 1:
        return []
    if size == 0:
        raise ProtocolError("empty binary message")
    (count,) = _U16.unpack_from(message)
    packets = []
    offset = 2
    for number in range(1, count + 1):
        if offset + 2 > size:
            raise ProtocolError(f"message of {size} bytes ends before packet {number} of {count}")
        (length,) = _U16.unpack_from(message, offset)
        offset += 2
        end = offset + length
        if end > size:
            raise ProtocolError(
                f"packet {number} of {count} claims {length} bytes but {size - offset} remain"
            )
        packets.append(message[offset:end])
        offset = end
    if offset != size:
        raise ProtocolError(f"{size - offset} bytes after the last of {count} packets")
    return packets


def token_and_mode(packet: bytes) -> tuple[int, int]:
    """A packet's instrument token and FeedPool mode; :class:`ProtocolError` for a bad length."""
    mode = _MODES_BY_SIZE.get(len(packet))
    if mode is None:
        raise ProtocolError(f"no packet kind is {len(packet)} bytes long")
    return _U32.unpack_from(packet)[0], mode


def normalise(packet: bytes, symbol: str, exchange: str, received_ms: int) -> dict[str, Any]:
    """FeedPool's tick (the ``data`` object of a ``market_data`` message) for ``packet``.

    Prices become rupees. ``timestamp`` is the exchange timestamp in ms, ``received_ms`` where the
    packet carries none (LTP and quote) or sends 0; ``ltt`` is the last trade time in ms (full
    packets), else ``timestamp``. ``change`` is ltp - close and ``change_percent`` its percentage
    of close, both 0.0 when close is 0. Index packets carry no trade, volume, order-book or OI
    fields: those are 0 and the book is five empty levels a side; their own change field is not
    read (the official client ignores it too). Kite sends no circuit limits: they are 0.0.
    :class:`ProtocolError` if the packet's length is no known kind.
    """
    decode = _DECODERS.get(len(packet))
    if decode is None:
        raise ProtocolError(f"no packet kind is {len(packet)} bytes long")
    return decode(packet, symbol, exchange, received_ms)


def _ltp(packet: bytes, symbol: str, exchange: str, received_ms: int) -> dict[str, Any]:
    token, ltp = LTP_PACKET.unpack(packet)
    return {
        "symbol": symbol,
        "exchange": exchange,
        "mode": LTP,
        "ltp": ltp / _DIVISORS.get(token & 0xFF, 100.0),
        "ltt": received_ms,
        "timestamp": received_ms,
    }


def _quote(packet: bytes, symbol: str, exchange: str, received_ms: int) -> dict[str, Any]:
    v = QUOTE_PACKET.unpack(packet)
    div = _DIVISORS.get(v[0] & 0xFF, 100.0)
    return _tick(v, div, symbol, exchange, mode=QUOTE, ltt=received_ms, timestamp=received_ms)


def _full(packet: bytes, symbol: str, exchange: str, received_ms: int) -> dict[str, Any]:
    v = FULL_PACKET.unpack(packet)
    div = _DIVISORS.get(v[0] & 0xFF, 100.0)
    timestamp = v[15] * 1000 or received_ms
    ltt = v[11] * 1000 or timestamp
    tick = _tick(v, div, symbol, exchange, mode=DEPTH, ltt=ltt, timestamp=timestamp)
    tick["oi"] = v[12]
    tick["upper_circuit"] = 0.0
    tick["lower_circuit"] = 0.0
    tick["depth"] = {
        "buy": [
            {"price": v[i + 1] / div, "quantity": v[i], "orders": v[i + 2]}
            for i in range(16, 31, 3)
        ],
        "sell": [
            {"price": v[i + 1] / div, "quantity": v[i], "orders": v[i + 2]}
            for i in range(31, 46, 3)
        ],
    }
    return tick


def _tick(
    v: tuple[int, ...],
    div: float,
    symbol: str,
    exchange: str,
    *,
    mode: int,
    ltt: int,
    timestamp: int,
) -> dict[str, Any]:
    """The quote-level tick from the fields a quote and a full packet share (``v[:11]``)."""
    ltp = v[1] / div
    close = v[10] / div
    change, change_percent = quote_change(v[1], v[10], div)
    average = v[3] / div
    return {
        "symbol": symbol,
        "exchange": exchange,
        "mode": mode,
        "ltp": ltp,
        "ltt": ltt,
        "timestamp": timestamp,
        "open": v[7] / div,
        "high": v[8] / div,
        "low": v[9] / div,
        "close": close,
        "volume": v[4],
        "last_trade_quantity": v[2],
        "average_price": average,
        "avg_trade_price": average,
        "total_buy_quantity": v[5],
        "total_sell_quantity": v[6],
        "change": change,
        "change_percent": change_percent,
    }


def _index_quote(packet: bytes, symbol: str, exchange: str, received_ms: int) -> dict[str, Any]:
    v = INDEX_QUOTE_PACKET.unpack(packet)
    return _index_tick(v, symbol, exchange, QUOTE, received_ms)


def _index_full(packet: bytes, symbol: str, exchange: str, received_ms: int) -> dict[str, Any]:
    v = INDEX_FULL_PACKET.unpack(packet)
    tick = _index_tick(v, symbol, exchange, DEPTH, v[7] * 1000 or received_ms)
    tick["oi"] = 0
    tick["upper_circuit"] = 0.0
    tick["lower_circuit"] = 0.0
    tick["depth"] = {
        "buy": [{"price": 0.0, "quantity": 0, "orders": 0} for _ in range(DEPTH_LEVELS)],
        "sell": [{"price": 0.0, "quantity": 0, "orders": 0} for _ in range(DEPTH_LEVELS)],
    }
    return tick


def _index_tick(
    v: tuple[int, ...], symbol: str, exchange: str, mode: int, timestamp: int
) -> dict[str, Any]:
    """The quote-level tick from the fields both index packets share (``v[:6]``)."""
    div = _DIVISORS.get(v[0] & 0xFF, 100.0)
    ltp = v[1] / div
    close = v[5] / div
    change, change_percent = quote_change(v[1], v[5], div)
    return {
        "symbol": symbol,
        "exchange": exchange,
        "mode": mode,
        "ltp": ltp,
        "ltt": timestamp,
        "timestamp": timestamp,
        "open": v[4] / div,
        "high": v[2] / div,
        "low": v[3] / div,
        "close": close,
        "volume": 0,
        "last_trade_quantity": 0,
        "average_price": 0.0,
        "avg_trade_price": 0.0,
        "total_buy_quantity": 0,
        "total_sell_quantity": 0,
        "change": change,
        "change_percent": change_percent,
    }


_DECODERS = {
    LTP_PACKET.size: _ltp,
    INDEX_QUOTE_PACKET.size: _index_quote,
    INDEX_FULL_PACKET.size: _index_full,
    QUOTE_PACKET.size: _quote,
    FULL_PACKET.size: _full,
}


# Requests, built by the adapter and parsed by the simulator.


def subscribe_request(tokens: Iterable[int]) -> str:
    """The text that subscribes ``tokens`` (in quote mode, Kite's default)."""
    return _dumps({"a": SUBSCRIBE, "v": list(tokens)})


def unsubscribe_request(tokens: Iterable[int]) -> str:
    """The text that unsubscribes ``tokens``."""
    return _dumps({"a": UNSUBSCRIBE, "v": list(tokens)})


def mode_request(mode: str, tokens: Iterable[int]) -> str:
    """The text that sets ``tokens`` to Kite mode ``mode`` ("ltp", "quote" or "full")."""
    if mode not in FEEDPOOL_MODES:
        raise ProtocolError(f"unknown Kite mode {mode!r}")
    return _dumps({"a": SET_MODE, "v": [mode, list(tokens)]})


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed request: ``mode`` is the Kite mode name for a mode request, else None."""

    action: str
    mode: str | None
    tokens: tuple[int, ...]


def parse_request(text: str) -> Request:
    """The request in a text frame; :class:`ProtocolError` saying what is wrong if malformed."""
    message = json_object(text, "request")
    action = message.get("a")
    value = message.get("v")
    if action in (SUBSCRIBE, UNSUBSCRIBE):
        return Request(action, None, _tokens(value))
    if action != SET_MODE:
        raise ProtocolError(f'"a" must be "subscribe", "unsubscribe" or "mode", not {action!r}')
    if not isinstance(value, list) or len(value) != 2:
        raise ProtocolError('"v" of a mode request must be [mode, [tokens]]')
    mode, tokens = value
    if not isinstance(mode, str) or mode not in FEEDPOOL_MODES:
        raise ProtocolError(f'mode must be "ltp", "quote" or "full", not {mode!r}')
    return Request(action, mode, _tokens(tokens))


def _tokens(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise ProtocolError(f"tokens must be a list, not {type(value).__name__}")
    for token in value:
        if type(token) is not int or not 0 < token <= MAX_TOKEN:
            raise ProtocolError(f"token {token!r} is not an integer from 1 to 2**32 - 1")
    return tuple(value)


# Server text messages.


def error_message(text: str) -> str:
    """The text frame the server sends to report an error; the client passes on ``text``."""
    return _dumps({"type": ERROR, "data": text})


def parse_text(text: str) -> tuple[str, Any]:
    """A server text frame's ``type`` ("order", "error", "message") and ``data``.

    :class:`ProtocolError` if it is not a JSON object with a string ``type``.
    """
    message = json_object(text, "text message")
    kind = message.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(f'text message "type" must be a string, not {kind!r}')
    return kind, message.get("data")
