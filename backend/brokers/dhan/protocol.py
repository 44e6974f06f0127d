"""Dhan's Live Market Feed (DhanHQ v2): the wire format, both directions.

Requests are JSON text: a subscribe or unsubscribe names at most :data:`MAX_REQUEST_INSTRUMENTS`
instruments, each as its exchange segment's name and its security ID (a string), under a request
code per mode; ``{"RequestCode": 12}`` asks the feed to disconnect. Dhan answers no request.

Everything Dhan sends is binary, little-endian, one packet per WebSocket message (the official
client reads only a message's first packet). Every packet begins with an 8-byte header: its
response code, the whole packet's length (header included: chosen as the official client's fixed
sizes and a captured 162-byte full packet have it, where Dhan's documentation says only "the
entire payload packet"), the exchange segment's number and the security ID. Each kind is one
precompiled :class:`struct.Struct`, so a packet is packed or unpacked in a single call:

====  =====  ===========  ==================================================================
code  bytes  packet       fields after the header
====  =====  ===========  ==================================================================
2     16     ticker       ltp (float32), last trade time
4     50     quote        ltp, last quantity (uint16), last trade time, average price,
                          volume, total sell quantity, total buy quantity, open, day close,
                          high, low
5     12     OI           open interest
6     16     prev close   previous day's close (float32), previous day's open interest
7     >= 8   status       the market's status (its body is undocumented and not read)
8     162    full         as quote up to total buy quantity, then open interest, its day
                          high and low, open, day close, high, low, and 5 levels of (bid
                          quantity, ask quantity, bid orders and ask orders (uint16), bid
                          price, ask price (float32))
50    10     disconnect   the reason (uint16): 805 too many connections, 806 Data APIs not
                          subscribed, 807 access token expired, 808 authentication failed,
                          809 access token invalid ...
====  =====  ===========  ==================================================================

Unmarked fields are uint32. Prices are float32 rupees. Times are epoch seconds of India's wall
clock read as UTC (a trade at 09:15 IST is sent as 09:15 UTC, as Dhan's maintainers describe it
and the official client shows it); :func:`epoch_ms` turns them into true epoch milliseconds.
:func:`normalise` turns a ticker, quote or full packet into FeedPool's tick.

Both the adapter (decoding) and the exchange simulator (encoding) use this module, so the two
cannot drift apart.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

from backend.brokers.codec import ProtocolError, json_object
from backend.feed import DEPTH, DEPTH_LEVELS, LTP, QUOTE, quote_change

# FeedPool's modes as Dhan's subscribe request codes; a mode's unsubscribe code is one more.
TICKER, QUOTE_REQUEST, FULL = 15, 17, 21
REQUEST_CODES = {LTP: TICKER, QUOTE: QUOTE_REQUEST, DEPTH: FULL}
FEEDPOOL_MODES = {code: mode for mode, code in REQUEST_CODES.items()}
UNSUBSCRIBE = {code + 1: mode for code, mode in FEEDPOOL_MODES.items()}
DISCONNECT_REQUEST = 12
MAX_REQUEST_INSTRUMENTS = 100

# Exchange segments: their names in requests and the master, their numbers in packets.
SEGMENTS = {
    "IDX_I": 0,
    "NSE_EQ": 1,
    "NSE_FNO": 2,
    "NSE_CURRENCY": 3,
    "BSE_EQ": 4,
    "MCX_COMM": 5,
    "BSE_CURRENCY": 7,
    "BSE_FNO": 8,
}
SEGMENT_NAMES = {number: name for name, number in SEGMENTS.items()}
#: FeedPool's exchange -> Dhan's segment number. Both index exchanges are Dhan's ``IDX_I``.
EXCHANGE_SEGMENTS = {
    "NSE": SEGMENTS["NSE_EQ"],
    "BSE": SEGMENTS["BSE_EQ"],
    "NSE_INDEX": SEGMENTS["IDX_I"],
    "BSE_INDEX": SEGMENTS["IDX_I"],
    "NFO": SEGMENTS["NSE_FNO"],
    "BFO": SEGMENTS["BSE_FNO"],
    "MCX": SEGMENTS["MCX_COMM"],
    "CDS": SEGMENTS["NSE_CURRENCY"],
}
#: Currency segments quote to 4 decimals (a quarter paisa), the others to 2.
CURRENCY_SEGMENTS = frozenset({SEGMENTS["NSE_CURRENCY"], SEGMENTS["BSE_CURRENCY"]})
MAX_SECURITY_ID = 2**32 - 1
_DIGITS = frozenset("0123456789").issuperset

# Response codes.
TICKER_PACKET_CODE, QUOTE_PACKET_CODE, OI_CODE, PREV_CLOSE_CODE = 2, 4, 5, 6
MARKET_STATUS_CODE, FULL_PACKET_CODE, DISCONNECT_CODE = 7, 8, 50

HEADER = struct.Struct("<BHBI")  # code, packet length, segment, security ID
_TRADE = "fHIfIII"  # ltp, last quantity, last trade time, average price, volume, sell, buy
TICKER_PACKET = struct.Struct("<BHBIfI")
PREV_CLOSE_PACKET = struct.Struct("<BHBIfI")
QUOTE_PACKET = struct.Struct("<BHBI" + _TRADE + "ffff")  # + open, day close, high, low
OI_PACKET = struct.Struct("<BHBII")
FULL_PACKET = struct.Struct("<BHBI" + _TRADE + "III" + "ffff" + "IIHHff" * DEPTH_LEVELS)
DISCONNECT_PACKET = struct.Struct("<BHBIH")
#: The kind of each packet the adapter reads, by response code.
PACKETS = {
    TICKER_PACKET_CODE: TICKER_PACKET,
    QUOTE_PACKET_CODE: QUOTE_PACKET,
    OI_CODE: OI_PACKET,
    PREV_CLOSE_CODE: PREV_CLOSE_PACKET,
    FULL_PACKET_CODE: FULL_PACKET,
    DISCONNECT_CODE: DISCONNECT_PACKET,
}
#: The tick packet of each FeedPool mode.
MODE_PACKETS = {LTP: TICKER_PACKET_CODE, QUOTE: QUOTE_PACKET_CODE, DEPTH: FULL_PACKET_CODE}

assert tuple(p.size for p in PACKETS.values()) == (16, 50, 12, 16, 162, 10)

#: India's offset from UTC, which Dhan's times carry: they are IST wall clock read as UTC.
IST_OFFSET_SECONDS = 19_800

# Disconnect reasons, in the words of Dhan's annexure.
TOO_MANY_CONNECTIONS = 805
DATA_APIS_NOT_SUBSCRIBED = 806
TOKEN_EXPIRED = 807
AUTHENTICATION_FAILED = 808
TOKEN_INVALID = 809
CLIENT_ID_INVALID = 810
TOO_MANY_INSTRUMENTS = 804
DISCONNECT_REASONS = {
    800: "Internal server error",
    TOO_MANY_INSTRUMENTS: "Requested number of instruments exceeds limit",
    TOO_MANY_CONNECTIONS: "Too many requests or connections",
    DATA_APIS_NOT_SUBSCRIBED: "Data APIs not subscribed",
    TOKEN_EXPIRED: "Access token is expired",
    AUTHENTICATION_FAILED: "Authentication failed: client ID or access token invalid",
    TOKEN_INVALID: "Access token is invalid",
    CLIENT_ID_INVALID: "Client ID is invalid",
}
#: The reasons that end the session: the token or client ID was refused.
SESSION_REASONS = frozenset(
    {TOKEN_EXPIRED, AUTHENTICATION_FAILED, TOKEN_INVALID, CLIENT_ID_INVALID}
)


def reason_text(reason: int) -> str:
    """Dhan's words for a disconnect reason, with its code: ``Access token is expired (807)``."""
    return f"{DISCONNECT_REASONS.get(reason, 'disconnected')} ({reason})"


def price_units(segment: int) -> int:
    """Price steps per rupee a segment quotes to: 10,000 for currencies, 100 elsewhere."""
    return 10_000 if segment in CURRENCY_SEGMENTS else 100


def epoch_ms(dhan_seconds: int) -> int:
    """True epoch milliseconds of a Dhan time (IST wall clock read as UTC, in seconds)."""
    return (dhan_seconds - IST_OFFSET_SECONDS) * 1000


def dhan_seconds(epoch_seconds: int) -> int:
    """A true epoch time in seconds as Dhan sends it: India's wall clock read as UTC."""
    return epoch_seconds + IST_OFFSET_SECONDS


# Reading packets, for the adapter.


def check(packet: bytes) -> int:
    """A packet's response code, once its header and size are found right;
    :class:`ProtocolError` if not.

    A known kind must be its own size and a market status packet the size its header says; a
    packet of another code is refused.
    """
    size = len(packet)
    if size < HEADER.size:
        raise ProtocolError(f"a packet of {size} bytes is shorter than the 8-byte header")
    code, length, _, _ = HEADER.unpack_from(packet)
    if length != size:
        raise ProtocolError(f"a packet of {size} bytes says it is {length} (code {code})")
    kind = PACKETS.get(code)
    if kind is not None and kind.size != size:
        raise ProtocolError(f"a packet of code {code} is {kind.size} bytes, not {size}")
    if kind is None and code != MARKET_STATUS_CODE:
        raise ProtocolError(f"no packet has code {code}")
    return code


def route_key(segment: int, security_id: int, mode: int) -> bytes:
    """How every tick packet of an instrument in ``mode`` begins: its header, the bytes a
    packet's route is found by (:func:`packet_route`)."""
    code = MODE_PACKETS[mode]
    return HEADER.pack(code, PACKETS[code].size, segment, security_id)


def packet_route(packet: bytes) -> bytes:
    """The header a packet begins with: its :func:`route_key` if it is a tick."""
    return packet[: HEADER.size]


def instrument_of(packet: bytes) -> bytes:
    """The segment and security ID of a packet, as its bytes: what a previous close is kept
    under until the instrument's ticks read it."""
    return packet[3 : HEADER.size]


def previous_close(packet: bytes) -> float:
    """The previous day's close of a prev close packet (code 6), in rupees."""
    return PREV_CLOSE_PACKET.unpack(packet)[4]


def disconnect_reason(packet: bytes) -> int:
    """The reason code of a disconnect packet (code 50)."""
    return DISCONNECT_PACKET.unpack(packet)[4]


def normalise(packet: bytes, symbol: str, exchange: str, received_ms: int, close: float) -> dict:
    """FeedPool's tick (the ``data`` object of a ``market_data`` message) for a ticker, quote or
    full packet, which must have passed :func:`check`.

    Prices are rounded to the segment's price step (float32 carries about 7 digits).
    ``timestamp`` is ``received_ms``: Dhan's packets carry no exchange time but the last trade's;
    ``ltt`` is that, in true epoch milliseconds. ``close`` is the previous day's close from the
    instrument's prev close packet (0 before one came), and sets ``change`` and
    ``change_percent``; the packets' own close is the day's, sent only after the market closes,
    and is not read. Dhan sends no circuit limits: they are 0.0.
    """
    code = packet[0]
    units = price_units(packet[3])
    tick: dict[str, Any] = {"symbol": symbol, "exchange": exchange}
    if code == TICKER_PACKET_CODE:
        _, _, _, _, ltp, ltt = TICKER_PACKET.unpack(packet)
        tick["mode"] = LTP
        tick["ltp"] = round(ltp * units) / units
        tick["ltt"] = epoch_ms(ltt)
        tick["timestamp"] = received_ms
        return tick
    if code == QUOTE_PACKET_CODE:
        tick["mode"] = QUOTE
        _quote(tick, QUOTE_PACKET.unpack(packet), _QUOTE_OHL, close, received_ms)
        return tick
    v = FULL_PACKET.unpack(packet)
    tick["mode"] = DEPTH
    _quote(tick, v, _FULL_OHL, close, received_ms)
    tick["oi"] = v[11]
    tick["upper_circuit"] = 0.0
    tick["lower_circuit"] = 0.0
    buy, sell = [], []
    for at in range(18, 18 + 6 * DEPTH_LEVELS, 6):
        bid_quantity, ask_quantity, bid_orders, ask_orders, bid, ask = v[at : at + 6]
        buy.append(
            {"price": round(bid * units) / units, "quantity": bid_quantity, "orders": bid_orders}
        )
        sell.append(
            {"price": round(ask * units) / units, "quantity": ask_quantity, "orders": ask_orders}
        )
    tick["depth"] = {"buy": buy, "sell": sell}
    return tick


# Where a quote and a full packet carry the day's open, high and low.
_QUOTE_OHL = (11, 13, 14)
_FULL_OHL = (14, 16, 17)


def _quote(
    tick: dict[str, Any], v: tuple, ohl: tuple[int, ...], close: float, received_ms: int
) -> None:
    """Fill ``tick`` with the quote-level fields from the unpacked packet ``v``: those a quote
    and a full packet share (``v[4:11]``), and the day's open, high and low at ``ohl``."""
    units = price_units(v[2])
    ltp_steps = round(v[4] * units)
    close_steps = round(close * units)
    average = round(v[7] * units) / units
    open_, high, low = (round(v[at] * units) / units for at in ohl)
    tick["ltp"] = ltp_steps / units
    tick["ltt"] = epoch_ms(v[6])
    tick["timestamp"] = received_ms
    tick["open"] = open_
    tick["high"] = high
    tick["low"] = low
    tick["close"] = close_steps / units
    tick["volume"] = v[8]
    tick["last_trade_quantity"] = v[5]
    tick["average_price"] = average
    tick["avg_trade_price"] = average
    tick["total_buy_quantity"] = v[10]
    tick["total_sell_quantity"] = v[9]
    tick["change"], tick["change_percent"] = quote_change(ltp_steps, close_steps, units)


def disconnect_packet(reason: int) -> bytes:
    """The packet with which Dhan ends a connection, and why."""
    return DISCONNECT_PACKET.pack(DISCONNECT_CODE, DISCONNECT_PACKET.size, 0, 0, reason)


# Requests, built by the adapter and parsed by the simulator.


def subscription_request(code: int, instruments: list[tuple[int, int]]) -> str:
    """The text of request ``code`` (a subscribe or unsubscribe code) for ``instruments``,
    ``(segment number, security ID)`` each, at most :data:`MAX_REQUEST_INSTRUMENTS`."""
    if not 0 < len(instruments) <= MAX_REQUEST_INSTRUMENTS:
        raise ProtocolError(
            f"a request names 1 to {MAX_REQUEST_INSTRUMENTS} instruments, not {len(instruments)}"
        )
    listed = [
        {"ExchangeSegment": SEGMENT_NAMES[segment], "SecurityId": str(security_id)}
        for segment, security_id in instruments
    ]
    return _dumps({"RequestCode": code, "InstrumentCount": len(listed), "InstrumentList": listed})


def disconnect_request() -> str:
    """The text that asks Dhan to end the connection."""
    return _dumps({"RequestCode": DISCONNECT_REQUEST})


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed request: its code, and its instruments as ``(segment number, security ID)``."""

    code: int
    instruments: tuple[tuple[int, int], ...] = ()


def parse_request(text: str) -> Request:
    """The request in a text frame; :class:`ProtocolError` saying what is wrong if malformed.

    ``SecurityId`` may be a string of digits, as documented, or a number (the official client
    sends what it is given).
    """
    message = json_object(text, "request")
    code = message.get("RequestCode")
    if type(code) is not int or code not in (DISCONNECT_REQUEST, *FEEDPOOL_MODES, *UNSUBSCRIBE):
        raise ProtocolError(f"RequestCode {code!r} is not 12, 15, 16, 17, 18, 21 or 22")
    if code == DISCONNECT_REQUEST:
        return Request(code)
    listed = message.get("InstrumentList")
    if not isinstance(listed, list) or not 0 < len(listed) <= MAX_REQUEST_INSTRUMENTS:
        raise ProtocolError(f"InstrumentList must list 1 to {MAX_REQUEST_INSTRUMENTS} instruments")
    if message.get("InstrumentCount") != len(listed):
        raise ProtocolError("InstrumentCount is not the number of instruments listed")
    return Request(code, tuple(_instrument(entry) for entry in listed))


def _instrument(entry: Any) -> tuple[int, int]:
    if not isinstance(entry, dict):
        raise ProtocolError("InstrumentList entries must be objects")
    segment = entry.get("ExchangeSegment")
    if not isinstance(segment, str) or segment not in SEGMENTS:
        raise ProtocolError(f"unknown ExchangeSegment {segment!r}")
    security_id = entry.get("SecurityId")
    if isinstance(security_id, str) and 0 < len(security_id) <= 10 and _DIGITS(security_id):
        number = int(security_id)
    elif type(security_id) is int:
        number = security_id
    else:
        raise ProtocolError(f"SecurityId {security_id!r} is not a security ID")
    if not 0 < number <= MAX_SECURITY_ID:
        raise ProtocolError(f"SecurityId {security_id!r} is out of range")
    return SEGMENTS[segment], number
