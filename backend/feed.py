"""The feed's vocabulary, the same whichever broker is behind it.

Modes, exchanges, connection states, bus topics, the client API's error codes and the fields of
the normalised tick are defined here once. The pool, the bus, the client API and the desktop app
speak only these; each broker package (:mod:`backend.brokers`) translates its own wire format to
and from them.
"""

from __future__ import annotations

# Subscription modes, as the client API numbers them.
LTP, QUOTE, DEPTH = 1, 2, 3
MODES = (LTP, QUOTE, DEPTH)
#: The mode part of a tick topic.
TOPIC_MODES = {LTP: "LTP", QUOTE: "QUOTE", DEPTH: "DEPTH"}
#: Best-five: the price levels per side of a Depth tick.
DEPTH_LEVELS = 5

#: FeedPool's (OpenAlgo's) exchanges. None contains a dot, so ``SYS.`` never prefixes a tick topic.
EXCHANGES = ("NSE", "NSE_INDEX", "NFO", "BSE", "BSE_INDEX", "BFO", "MCX", "CDS")

# A pooled connection's states, on SYS.HEALTH and SYS.POOL. A connection refused for its
# session is ``session_expired`` until the session is renewed.
CONNECTING, CONNECTED, RECONNECTING, DOWN = "connecting", "connected", "reconnecting", "down"
SESSION_EXPIRED = "session_expired"

# Bus topics. Ticks go out on tick_topic(); monitoring on the SYS. topics.
SYSTEM_PREFIX = "SYS."
POOL_TOPIC = "SYS.POOL"
CLIENTS_TOPIC = "SYS.CLIENTS"
LOG_TOPIC = "SYS.LOG"
HEALTH_TOPIC = "SYS.HEALTH"
MOVES_TOPIC = "SYS.MOVES"

# What moves a symbol from one broker account to another (SYS.MOVES): its account could not
# serve it, its account is back, or the account carrying it needs the room for its own.
FAILOVER, RETURN, DISPLACED = "failover", "return", "displaced"


def tick_topic(exchange: str, symbol: str, mode: int) -> str:
    """The topic one symbol's ticks of one mode go out on, e.g. ``NSE_SBIN_QUOTE``."""
    return f"{exchange}_{symbol}_{TOPIC_MODES[mode]}"


# The client API's error codes.
INVALID_JSON = "INVALID_JSON"
INVALID_ACTION = "INVALID_ACTION"
AUTHENTICATION_ERROR = "AUTHENTICATION_ERROR"
NOT_AUTHENTICATED = "NOT_AUTHENTICATED"
INVALID_MODE = "INVALID_MODE"
INVALID_PARAMETERS = "INVALID_PARAMETERS"
BROKER_ERROR = "BROKER_ERROR"
BROKER_CONNECTION_ERROR = "BROKER_CONNECTION_ERROR"
MAX_CAPACITY_REACHED = "MAX_CAPACITY_REACHED"
NOT_SUBSCRIBED = "NOT_SUBSCRIBED"
SERVER_ERROR = "SERVER_ERROR"

# The normalised tick (the ``data`` of a ``market_data`` message), field by field. Prices are
# rupees; ``timestamp`` and ``ltt`` are epoch milliseconds.
LTP_FIELDS = ("symbol", "exchange", "mode", "ltp", "ltt", "timestamp")
QUOTE_FIELDS = (
    *LTP_FIELDS,
    "open",
    "high",
    "low",
    "close",
    "volume",
    "last_trade_quantity",
    "average_price",
    "avg_trade_price",
    "total_buy_quantity",
    "total_sell_quantity",
    "change",
    "change_percent",
)
DEPTH_FIELDS = (*QUOTE_FIELDS, "oi", "upper_circuit", "lower_circuit", "depth")
#: The fields of each mode's ticks.
TICK_FIELDS = {LTP: LTP_FIELDS, QUOTE: QUOTE_FIELDS, DEPTH: DEPTH_FIELDS}


def quote_change(ltp: int, close: int, div: float) -> tuple[float, float]:
    """``(change, change_percent)`` of a Quote tick from its price and the previous close in wire
    units (``div`` to the rupee): rupees, and percent to two places; 0 without a close.

    Worked in whole units, so the change needs no rounding (a rupee amount in paise divides
    exactly to its nearest float) and the percent only a rounding to a whole number of
    hundredths: ``round`` to places is several times dearer, and this runs for every tick."""
    if not close:
        return 0.0, 0.0
    change = ltp - close
    return change / div, round(change * 10_000 / close) / 100
