"""Noren OMS's market-data WebSocket: the wire format, both directions, the same at every vendor.

Every message is a JSON object in a text frame, its kind under ``t``:

=========  ==================================================================================
client     ``c`` connect with a ``susertoken`` (the legacy generation) or ``a`` with an
           ``accesstoken`` (the OAuth generation), each with ``uid``, ``actid`` and ``source``;
           ``t`` / ``u`` subscribe and unsubscribe the touchline, ``d`` / ``ud`` the depth, each
           naming its scrips under ``k`` as ``EXCHANGE|TOKEN`` keys joined by ``#``; ``h`` a
           heartbeat in text
server     ``ck`` / ``ak`` the connect's acknowledgement, ``s`` ``OK`` or not; ``tk`` / ``dk``
           a subscription's snapshot, every field; ``tf`` / ``df`` its updates, ``e`` and ``tk``
           and only the fields that changed; ``uk`` / ``udk`` an unsubscribe's
           acknowledgement; ``hk`` a text heartbeat's
=========  ==================================================================================

Every value arrives as a string: prices formatted to the snapshot's precision ``pp``
(``"118.55"``), quantities as whole numbers, ``ft`` (the feed time) as epoch seconds. The
receiver keeps each subscription's last full state and merges each update into it
(:func:`merge`); the sender sends what changed since the last message (:func:`changes`).

:func:`normalise` turns a subscription's merged state into FeedPool's tick. Chosen, where the
facts are uncertain: ``ltt`` is ``ft`` (Noren sends no trade time in the touchline, and the
depth's ``ltt`` is a time of day without a date), ``timestamp`` is when FeedPool received the
message, ``change_percent`` is Noren's ``pc`` and ``change`` is ``lp`` less the previous close
``c``; a field Noren did not send (the touchline's ``ltq``, ``tbq``, ``tsq``, an index's book)
is 0.

Both the adapter (reading) and the exchange simulator (writing) use this module, so the two
cannot drift apart.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from backend.brokers.codec import ProtocolError, json_object
from backend.feed import DEPTH, DEPTH_LEVELS, LTP, QUOTE

# Connect messages and their acknowledgements.
LEGACY_CONNECT, OAUTH_CONNECT = "c", "a"
CONNECT_ACKS = {LEGACY_CONNECT: "ck", OAUTH_CONNECT: "ak"}
#: The field each connect carries its token in.
TOKEN_FIELDS = {LEGACY_CONNECT: "susertoken", OAUTH_CONNECT: "accesstoken"}
OK, NOT_OK = "OK", "NOT_OK"
#: The words Noren answers an ended session with (two spaces, as Noren writes them).
INVALID_SESSION = "Session Expired :  Invalid Session Key"
SOURCE = "API"

# Feeds: subscribe, unsubscribe and their answers.
TOUCHLINE, DEPTH_FEED = "t", "d"
UNSUBSCRIBE = {TOUCHLINE: "u", DEPTH_FEED: "ud"}
UNSUBSCRIBED_FEED = {kind: feed for feed, kind in UNSUBSCRIBE.items()}
UNSUBSCRIBED = {TOUCHLINE: "uk", DEPTH_FEED: "udk"}
SNAPSHOTS = {TOUCHLINE: "tk", DEPTH_FEED: "dk"}
UPDATES = {TOUCHLINE: "tf", DEPTH_FEED: "df"}
#: The feed of each tick message kind.
FEED_OF = {kind: feed for table in (SNAPSHOTS, UPDATES) for feed, kind in table.items()}
#: FeedPool's modes on Noren's feeds: LTP and Quote read the touchline, Depth the depth.
MODE_FEEDS = {LTP: TOUCHLINE, QUOTE: TOUCHLINE, DEPTH: DEPTH_FEED}
HEARTBEAT, HEARTBEAT_ACK = "h", "hk"
#: Scrips per subscribe or unsubscribe message (Noren documents none; OpenAlgo sends 100).
MAX_REQUEST_KEYS = 100

#: FeedPool's exchanges as Noren names them: the indices are listed on their exchange.
EXCHANGES = {
    "NSE": "NSE",
    "NSE_INDEX": "NSE",
    "NFO": "NFO",
    "BSE": "BSE",
    "BSE_INDEX": "BSE",
    "BFO": "BFO",
    "MCX": "MCX",
    "CDS": "CDS",
}
NOREN_EXCHANGES = frozenset({"NSE", "NFO", "BSE", "BFO", "MCX", "CDS", "NCX", "BCD"})
#: Price decimals when a snapshot gives no ``pp``: currencies quote to 4, the rest to 2.
CURRENCY_EXCHANGES = frozenset({"CDS", "BCD"})
MAX_TOKEN_DIGITS = 10
_DIGITS = frozenset("0123456789").issuperset


def key(exchange: str, token: str) -> str:
    """The scrip key of a FeedPool exchange's token: ``NSE|22``."""
    return f"{EXCHANGES[exchange]}|{token}"


def split_key(text: str) -> tuple[str, str]:
    """``(exchange, token)`` of a scrip key; :class:`ProtocolError` unless it is one."""
    exchange, bar, token = text.partition("|")
    if not bar or exchange not in NOREN_EXCHANGES:
        raise ProtocolError(f"{text[:40]!r} is not EXCHANGE|TOKEN with a Noren exchange")
    if not 0 < len(token) <= MAX_TOKEN_DIGITS or not _DIGITS(token):
        raise ProtocolError(f"{text[:40]!r} does not end in a token of digits")
    return exchange, token


def precision(exchange: str) -> int:
    """Price decimals of an exchange's scrips, as a snapshot's ``pp`` gives them."""
    return 4 if exchange in CURRENCY_EXCHANGES else 2


# Messages the client sends.


def _dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(value)  # json's default spacing, as the official clients send


def connect_message(connect: str, uid: str, token: str) -> str:
    """The first message on a socket: ``c`` with a susertoken or ``a`` with an access token.
    ``actid`` is the user ID, as the official clients send it."""
    if connect not in TOKEN_FIELDS:
        raise ProtocolError(f"the connect message is 'c' or 'a', not {connect!r}")
    return _dumps(
        {"t": connect, "uid": uid, "actid": uid, TOKEN_FIELDS[connect]: token, "source": SOURCE}
    )


def feed_message(kind: str, keys: Iterable[str]) -> str:
    """A subscribe (``t``, ``d``) or unsubscribe (``u``, ``ud``) of ``keys``."""
    return _dumps({"t": kind, "k": "#".join(keys)})


def heartbeat_message() -> str:
    return _dumps({"t": HEARTBEAT})


# Messages the client reads.


def parse(text: str) -> dict[str, Any]:
    """A message from Noren: a JSON object with a string ``t``; :class:`ProtocolError` if not."""
    message = json_object(text, "message")
    if not isinstance(message.get("t"), str):
        raise ProtocolError("a message without a string 't'")
    return message


def tick_key(message: Mapping[str, Any]) -> str:
    """The scrip key of a ``tk``, ``tf``, ``dk`` or ``df``, from its ``e`` and ``tk``."""
    exchange, token = message.get("e"), message.get("tk")
    if not isinstance(exchange, str) or not isinstance(token, str):
        raise ProtocolError("a tick message without string 'e' and 'tk'")
    return f"{exchange}|{token}"


def merge(state: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` with the fields of ``update`` (a change-only ``tf`` or ``df``) laid over it."""
    merged = dict(state)
    merged.update(update)
    return merged


def changes(state: Mapping[str, str], current: Mapping[str, str]) -> dict[str, str]:
    """The fields of ``current`` that ``state`` lacks or holds another value of: what an update
    sends, so that :func:`merge` of it on ``state`` is ``current``."""
    return {name: value for name, value in current.items() if state.get(name) != value}


def _text(state: Mapping[str, Any], name: str) -> str | None:
    value = state.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"{name!r} is {type(value).__name__}, not a string")
    return value


def _price(state: Mapping[str, Any], name: str) -> float:
    """A price field in rupees; 0.0 when Noren did not send it."""
    text = _text(state, name)
    if text is None:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise ProtocolError(f"{name!r} is {text[:30]!r}, not a number") from None
    if not math.isfinite(value):
        raise ProtocolError(f"{name!r} is {text[:30]!r}, not a finite number")
    return value


def _quantity(state: Mapping[str, Any], name: str) -> int:
    """A quantity field, a whole number; 0 when Noren did not send it."""
    text = _text(state, name)
    if text is None:
        return 0
    if not 0 < len(text) <= 20 or not _DIGITS(text):
        raise ProtocolError(f"{name!r} is {text[:30]!r}, not a whole number")
    return int(text)


def normalise(
    state: Mapping[str, Any], mode: int, symbol: str, exchange: str, received_ms: int
) -> dict[str, Any]:
    """FeedPool's tick (the ``data`` of a ``market_data`` message) of a subscription's merged
    state at ``mode``; :class:`ProtocolError` naming a field that is not what Noren sends.

    The fields are those of the other brokers' ticks (:data:`backend.feed.TICK_FIELDS`), in
    their order; see the module's text for what each is read from.
    """
    feed_time = _quantity(state, "ft")
    tick: dict[str, Any] = {
        "symbol": symbol,
        "exchange": exchange,
        "mode": mode,
        "ltp": _price(state, "lp"),
        "ltt": feed_time * 1000 if feed_time else received_ms,
        "timestamp": received_ms,
    }
    if mode == LTP:
        return tick
    close = _price(state, "c")
    average = _price(state, "ap")
    decimals = _quantity(state, "pp") or precision(_text(state, "e") or "")
    tick["open"] = _price(state, "o")
    tick["high"] = _price(state, "h")
    tick["low"] = _price(state, "l")
    tick["close"] = close
    tick["volume"] = _quantity(state, "v")
    tick["last_trade_quantity"] = _quantity(state, "ltq")
    tick["average_price"] = average
    tick["avg_trade_price"] = average
    tick["total_buy_quantity"] = _quantity(state, "tbq")
    tick["total_sell_quantity"] = _quantity(state, "tsq")
    tick["change"] = round(tick["ltp"] - close, decimals) if close else 0.0
    tick["change_percent"] = _price(state, "pc")
    if mode == QUOTE:
        return tick
    tick["oi"] = _quantity(state, "oi")
    tick["upper_circuit"] = _price(state, "uc")
    tick["lower_circuit"] = _price(state, "lc")
    tick["depth"] = {
        side: [
            {
                "price": _price(state, f"{prefix}p{level}"),
                "quantity": _quantity(state, f"{prefix}q{level}"),
                "orders": _quantity(state, f"{prefix}o{level}"),
            }
            for level in range(1, DEPTH_LEVELS + 1)
        ]
        for side, prefix in (("buy", "b"), ("sell", "s"))
    }
    return tick


# Messages the simulator reads.


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed client message: its kind (``t`` in it), and what that kind carries: the scrip
    keys of a (un)subscribe, the user ID and token of a connect."""

    kind: str
    keys: tuple[str, ...] = ()
    uid: str = ""
    token: str = ""


FEED_REQUESTS = frozenset({TOUCHLINE, DEPTH_FEED, *UNSUBSCRIBE.values()})


def parse_request(text: str) -> Request:
    """The client message in a text frame; :class:`ProtocolError` saying what is wrong if it is
    not a connect, a (un)subscribe with keys, or a heartbeat."""
    message = parse(text)
    kind = message["t"]
    if kind in TOKEN_FIELDS:
        uid, token = message.get("uid"), message.get(TOKEN_FIELDS[kind])
        if not isinstance(uid, str) or not isinstance(token, str):
            raise ProtocolError(f"a connect {kind!r} needs string 'uid' and {TOKEN_FIELDS[kind]!r}")
        return Request(kind, uid=uid, token=token)
    if kind == HEARTBEAT:
        return Request(kind)
    if kind not in FEED_REQUESTS:
        raise ProtocolError(f"no client message has t {kind[:20]!r}")
    keys = message.get("k")
    if not isinstance(keys, str) or not keys:
        raise ProtocolError(f"a {kind!r} message needs its scrips in 'k'")
    listed = tuple(keys.split("#"))
    for each in listed:
        split_key(each)
    return Request(kind, keys=listed)


# Messages the simulator sends.


def ack_message(connect: str, ok: bool, uid: str) -> str:
    """The acknowledgement of a connect: ``OK``, or ``NOT_OK`` with :data:`INVALID_SESSION`."""
    answer: dict[str, str] = {"t": CONNECT_ACKS[connect], "s": OK if ok else NOT_OK, "uid": uid}
    if not ok:
        answer["emsg"] = INVALID_SESSION
    return _dumps(answer)


def tick_message(kind: str, scrip: str, fields: Mapping[str, str]) -> str:
    """A ``tk``, ``tf``, ``dk`` or ``df`` of the scrip key ``scrip``: ``t``, ``e``, ``tk``,
    then ``fields``."""
    exchange, token = split_key(scrip)
    return _dumps({"t": kind, "e": exchange, "tk": token, **fields})


def unsubscribed_message(feed: str, keys: Iterable[str]) -> str:
    """The acknowledgement of an unsubscribe of ``feed``: ``uk`` or ``udk`` with its keys."""
    return _dumps({"t": UNSUBSCRIBED[feed], "k": "#".join(keys)})


def heartbeat_ack() -> str:
    return _dumps({"t": HEARTBEAT_ACK})
