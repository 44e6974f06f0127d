"""Angel One SmartAPI WebSocket 2.0 ("SmartStream"): the wire format, both directions.

Requests are JSON text; ticks are binary little-endian packets, one per frame, in three sizes
(LTP 51 bytes, Quote 123, SnapQuote 379). Each size is one precompiled :class:`struct.Struct`, so
a packet is packed or unpacked in a single call. Prices on the wire are integer paise (10^-7 rupee
for currency derivatives); :func:`normalise` turns a packet into FeedPool's tick in rupees.

Both the adapter (decoding) and the exchange simulator (encoding) use this module, so the two
cannot drift apart. Nothing outside Angel One's package and the simulator's SmartStream side
imports it.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

from backend.brokers.codec import ProtocolError, json_object
from backend.feed import DEPTH, DEPTH_LEVELS, LTP, MODES, QUOTE, quote_change

# SmartStream's modes are FeedPool's: 1 LTP, 2 Quote, 3 SnapQuote (best five, FeedPool's Depth).
SNAP_QUOTE = DEPTH

SUBSCRIBE, UNSUBSCRIBE = 1, 0

# FeedPool exchange -> SmartStream exchangeType.
EXCHANGE_TYPES = {
    "NSE": 1,
    "NSE_INDEX": 1,
    "NFO": 2,
    "BSE": 3,
    "BSE_INDEX": 3,
    "BFO": 4,
    "MCX": 5,
    "CDS": 13,
}
CURRENCY_EXCHANGE_TYPE = 13
VALID_EXCHANGE_TYPES = frozenset({1, 2, 3, 4, 5, 7, 13})

# The text the broker sends with each refusal.
ERROR_INVALID_PAYLOAD = ("E1001", "Invalid Request Payload")
ERROR_SUBSCRIPTION_LIMIT = ("E1002", "Invalid Request. Subscription Limit Exceeded")
HTTP_AUTH_ERRORS = {
    "Authorization": "Invalid Auth token",
    "x-client-code": "Invalid Client Code",
    "x-api-key": "Invalid API Key",
    "x-feed-token": "Invalid Feed Token",
}
HTTP_CONNECTION_LIMIT = "Invalid Request. Connection Limit Exceeded."

MAX_CORRELATION_ID = 10
TOKEN_FIELD_SIZE = 25

_HEADER = "<BB25sqqq"  # mode, exchange type, token, sequence, exchange timestamp, ltp
_QUOTE_TAIL = "qqqddqqqq"  # ltq, avg price, volume, total buy, total sell, open, high, low, close
_SNAP_TAIL = "qqq" + "HqqH" * (2 * DEPTH_LEVELS) + "qqqq"  # ltt, oi, oi change, book, circuits

LTP_PACKET = struct.Struct(_HEADER)
QUOTE_PACKET = struct.Struct(_HEADER + _QUOTE_TAIL)
SNAP_QUOTE_PACKET = struct.Struct(_HEADER + _QUOTE_TAIL + _SNAP_TAIL)
PACKETS = {LTP: LTP_PACKET, QUOTE: QUOTE_PACKET, SNAP_QUOTE: SNAP_QUOTE_PACKET}
_SIZES = {LTP_PACKET.size: LTP, QUOTE_PACKET.size: QUOTE, SNAP_QUOTE_PACKET.size: SNAP_QUOTE}

assert (LTP_PACKET.size, QUOTE_PACKET.size, SNAP_QUOTE_PACKET.size) == (51, 123, 379)


@dataclass(slots=True)
class Level:
    """One side of one best-five level, as on the wire (price in paise)."""

    is_buy: bool
    quantity: int
    price: int
    orders: int


@dataclass(slots=True)
class Packet:
    """One tick packet, field for field, with prices in paise as on the wire.

    Fields past the packet's mode keep their defaults: an LTP packet has no OHLC.
    """

    mode: int
    exchange_type: int
    token: str
    sequence: int
    exchange_timestamp: int
    ltp: int
    last_traded_quantity: int = 0
    average_price: int = 0
    volume: int = 0
    total_buy_quantity: float = 0.0
    total_sell_quantity: float = 0.0
    open: int = 0
    high: int = 0
    low: int = 0
    close: int = 0
    last_traded_timestamp: int = 0
    open_interest: int = 0
    open_interest_change: int = 0
    depth: tuple[Level, ...] = ()
    upper_circuit: int = 0
    lower_circuit: int = 0
    week52_high: int = 0
    week52_low: int = 0


def encode(packet: Packet) -> bytes:
    """The binary frame for ``packet`` at its own mode."""
    fields: list[Any] = [
        packet.mode,
        packet.exchange_type,
        packet.token.encode("ascii"),
        packet.sequence,
        packet.exchange_timestamp,
        packet.ltp,
    ]
    if packet.mode >= QUOTE:
        fields += [
            packet.last_traded_quantity,
            packet.average_price,
            packet.volume,
            packet.total_buy_quantity,
            packet.total_sell_quantity,
            packet.open,
            packet.high,
            packet.low,
            packet.close,
        ]
    if packet.mode == SNAP_QUOTE:
        if len(packet.depth) != 2 * DEPTH_LEVELS:
            raise ProtocolError(f"a SnapQuote packet needs {2 * DEPTH_LEVELS} book levels")
        fields += [packet.last_traded_timestamp, packet.open_interest, packet.open_interest_change]
        for level in packet.depth:
            fields += [int(level.is_buy), level.quantity, level.price, level.orders]
        fields += [
            packet.upper_circuit,
            packet.lower_circuit,
            packet.week52_high,
            packet.week52_low,
        ]
    return PACKETS[packet.mode].pack(*fields)


def decode(frame: bytes) -> Packet:
    """The packet in one binary frame; :class:`ProtocolError` if its size or mode is wrong."""
    mode = _SIZES.get(len(frame))
    if mode is None or frame[0] != mode:
        raise ProtocolError(f"binary frame of {len(frame)} bytes with mode byte {frame[:1].hex()}")
    values = PACKETS[mode].unpack(frame)
    token = values[2].split(b"\0", 1)[0].decode("ascii", "replace")
    packet = Packet(mode, values[1], token, values[3], values[4], values[5])
    if mode >= QUOTE:
        (
            packet.last_traded_quantity,
            packet.average_price,
            packet.volume,
            packet.total_buy_quantity,
            packet.total_sell_quantity,
            packet.open,
            packet.high,
            packet.low,
            packet.close,
        ) = values[6:15]
    if mode == SNAP_QUOTE:
        packet.last_traded_timestamp, packet.open_interest, packet.open_interest_change = values[
            15:18
        ]
        book = values[18:58]
        packet.depth = tuple(
            Level(book[i] == 1, book[i + 1], book[i + 2], book[i + 3]) for i in range(0, 40, 4)
        )
        (
            packet.upper_circuit,
            packet.lower_circuit,
            packet.week52_high,
            packet.week52_low,
        ) = values[58:62]
    return packet


def price_divisor(exchange_type: int) -> float:
    """Wire units per rupee: paise everywhere, 10^7 for currency derivatives."""
    return 1e7 if exchange_type == CURRENCY_EXCHANGE_TYPE else 100.0


def route_key(key: tuple[int, str], mode: int) -> bytes:
    """How every tick frame of ``key`` (exchange type, token) in ``mode`` begins: its mode byte,
    exchange type and NUL-padded token, the bytes :func:`frame_route` reads."""
    exchange_type, token = key
    return bytes((mode, exchange_type)) + token.encode("ascii").ljust(TOKEN_FIELD_SIZE, b"\0")


def frame_route(frame: bytes) -> bytes:
    """The :func:`route_key` a tick frame begins with, read without decoding the token;
    :class:`ProtocolError` if the frame is malformed."""
    mode = _SIZES.get(len(frame))
    if mode is None or frame[0] != mode:
        raise ProtocolError(f"binary frame of {len(frame)} bytes with mode byte {frame[:1].hex()}")
    return frame[: 2 + TOKEN_FIELD_SIZE]


def normalise(frame: bytes, symbol: str, exchange: str) -> dict[str, Any]:
    """FeedPool's tick (the ``data`` object of a ``market_data`` message) for a tick frame.

    The frame must be well formed (see :func:`frame_route`). Prices become rupees.
    ``timestamp`` is the exchange timestamp in ms; ``ltt`` is the last trade time in ms (the
    exchange timestamp where the packet carries none). One ``unpack`` reads the whole packet.
    """
    mode = frame[0]
    values = PACKETS[mode].unpack(frame)
    div = price_divisor(values[1])
    timestamp = values[4]
    ltp = values[5] / div
    ltt = values[15] if mode == SNAP_QUOTE and values[15] else timestamp
    if ltt < 100_000_000_000:  # the broker sends the last trade time in seconds
        ltt *= 1000
    tick: dict[str, Any] = {
        "symbol": symbol,
        "exchange": exchange,
        "mode": mode,
        "ltp": ltp,
        "ltt": ltt,
        "timestamp": timestamp,
    }
    if mode == LTP:
        return tick
    close = values[14] / div
    change, change_percent = quote_change(values[5], values[14], div)
    average = values[7] / div
    tick["open"] = values[11] / div
    tick["high"] = values[12] / div
    tick["low"] = values[13] / div
    tick["close"] = close
    tick["volume"] = values[8]
    tick["last_trade_quantity"] = values[6]
    tick["average_price"] = average
    tick["avg_trade_price"] = average
    tick["total_buy_quantity"] = int(values[9])
    tick["total_sell_quantity"] = int(values[10])
    tick["change"] = change
    tick["change_percent"] = change_percent
    if mode == SNAP_QUOTE:
        tick["oi"] = values[16]
        tick["upper_circuit"] = values[58] / div
        tick["lower_circuit"] = values[59] / div
        tick["depth"] = _book(values[18:58], div)
    return tick


def _book(levels: tuple[int, ...], div: float) -> dict[str, list[dict[str, Any]]]:
    """The best five a side from the packed levels ``(flag, quantity, price, orders)``."""
    book: dict[str, list[dict[str, Any]]] = {"buy": [], "sell": []}
    for at in range(0, len(levels), 4):
        side = book["buy" if levels[at] == 1 else "sell"]
        side.append(
            {"price": levels[at + 2] / div, "quantity": levels[at + 1], "orders": levels[at + 3]}
        )
    for levels_of_side in book.values():
        empty = DEPTH_LEVELS - len(levels_of_side)
        levels_of_side.extend({"price": 0.0, "quantity": 0, "orders": 0} for _ in range(empty))
        del levels_of_side[DEPTH_LEVELS:]
    return book


def request(action: int, mode: int, tokens: dict[int, list[str]], correlation_id: str = "") -> str:
    """A subscribe (action 1) or unsubscribe (action 0) request for ``{exchangeType: tokens}``."""
    message: dict[str, Any] = {
        "action": action,
        "params": {
            "mode": mode,
            "tokenList": [
                {"exchangeType": ex, "tokens": list(toks)} for ex, toks in tokens.items() if toks
            ],
        },
    }
    if correlation_id:
        message = {"correlationID": correlation_id[:MAX_CORRELATION_ID], **message}
    return json.dumps(message, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed subscribe or unsubscribe request."""

    correlation_id: str
    action: int
    mode: int
    tokens: tuple[tuple[int, str], ...]  # (exchangeType, token)


def parse_request(text: str) -> Request:
    """The request in a text frame; :class:`ProtocolError` (answered with E1001) if malformed."""
    message = json_object(text, "request")
    # The documentation allows 10 characters, but the broker serves longer IDs and echoes them.
    correlation_id = message.get("correlationID", "")
    if not isinstance(correlation_id, str):
        raise ProtocolError("correlationID must be a string")
    action = message.get("action")
    params = message.get("params")
    if action not in (SUBSCRIBE, UNSUBSCRIBE) or isinstance(action, bool):
        raise ProtocolError("action must be 0 or 1")
    if not isinstance(params, dict):
        raise ProtocolError("params must be an object")
    mode = params.get("mode")
    if mode not in MODES or isinstance(mode, bool):
        raise ProtocolError("mode must be 1, 2 or 3")
    token_list = params.get("tokenList")
    if not isinstance(token_list, list) or not token_list:
        raise ProtocolError("tokenList must be a non-empty list")
    tokens: list[tuple[int, str]] = []
    for entry in token_list:
        if not isinstance(entry, dict):
            raise ProtocolError("tokenList entries must be objects")
        exchange_type = entry.get("exchangeType")
        entry_tokens = entry.get("tokens")
        if type(exchange_type) is not int or exchange_type not in VALID_EXCHANGE_TYPES:
            raise ProtocolError(f"unknown exchangeType {exchange_type!r}")
        if not isinstance(entry_tokens, list) or not all(
            isinstance(t, str) and 0 < len(t) < TOKEN_FIELD_SIZE and t.isascii()
            for t in entry_tokens
        ):
            raise ProtocolError("tokens must be a list of token strings")
        tokens += [(exchange_type, t) for t in entry_tokens]
    return Request(correlation_id, action, mode, tuple(tokens))


def error_frame(code_and_message: tuple[str, str], correlation_id: str = "") -> str:
    """The text frame the broker sends to refuse a request."""
    code, message = code_and_message
    return json.dumps({"correlationID": correlation_id, "errorCode": code, "errorMessage": message})
