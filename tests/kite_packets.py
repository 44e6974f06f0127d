"""KiteTicker packets built field by field, for the protocol's tests: the official client's
parser and FeedPool's decoder both read them. All arguments are integer wire values; times are
epoch seconds. (The simulator packs its ticks as record arrays, ``backend/simulator/kite.py``.)
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

from backend.brokers.zerodha.protocol import (
    FULL_PACKET,
    INDEX_FULL_PACKET,
    INDEX_QUOTE_PACKET,
    LTP_PACKET,
    QUOTE_PACKET,
    ProtocolError,
)
from backend.feed import DEPTH_LEVELS

_U16 = struct.Struct(">H")


def pack_ltp(token: int, ltp: int) -> bytes:
    """An 8-byte LTP packet."""
    return LTP_PACKET.pack(token, ltp)


def pack_index_quote(
    token: int, ltp: int, *, high: int, low: int, open: int, close: int, change: int
) -> bytes:
    """A 28-byte index quote packet; ``change`` (ltp - close) is its one signed field."""
    return INDEX_QUOTE_PACKET.pack(token, ltp, high, low, open, close, change)


def pack_index_full(
    token: int,
    ltp: int,
    *,
    high: int,
    low: int,
    open: int,
    close: int,
    change: int,
    exchange_timestamp: int,
) -> bytes:
    """A 32-byte index full packet: the index quote and the exchange timestamp."""
    return INDEX_FULL_PACKET.pack(token, ltp, high, low, open, close, change, exchange_timestamp)


class QuoteFields(NamedTuple):
    """A quote packet's fields after the token and the last price, in packet order."""

    last_quantity: int
    average_price: int
    volume: int
    total_buy_quantity: int
    total_sell_quantity: int
    open: int
    high: int
    low: int
    close: int


def pack_quote(token: int, ltp: int, quote: Sequence[int]) -> bytes:
    """A 44-byte quote packet; ``quote`` holds :class:`QuoteFields` in order (any sequence)."""
    return QUOTE_PACKET.pack(token, ltp, *quote)


def pack_full(
    token: int,
    ltp: int,
    quote: Sequence[int],
    *,
    last_trade_time: int,
    oi: int,
    oi_day_high: int,
    oi_day_low: int,
    exchange_timestamp: int,
    depth: Sequence[int],
) -> bytes:
    """A 184-byte full packet: a quote packet's fields (``quote`` as in :func:`pack_quote`), then
    these.

    ``depth`` is 30 integers: (quantity, price, orders) for five buy levels, then five sell.
    """
    if len(depth) != 6 * DEPTH_LEVELS:
        raise ProtocolError(f"a full packet needs {6 * DEPTH_LEVELS} depth values")
    return FULL_PACKET.pack(
        token,
        ltp,
        *quote,
        last_trade_time,
        oi,
        oi_day_high,
        oi_day_low,
        exchange_timestamp,
        *depth,
    )


def message(packets: Sequence[bytes]) -> bytes:
    """One binary message framing ``packets``."""
    return _U16.pack(len(packets)) + b"".join(_U16.pack(len(p)) + p for p in packets)
