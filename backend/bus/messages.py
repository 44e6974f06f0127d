"""Every message the backend publishes or prints, one :class:`msgspec.Struct` each.

On the bus (:mod:`backend.bus.publisher`) each topic carries one type: :data:`SYSTEM_TYPES` maps
the ``SYS.`` topics to theirs, :data:`TICK_TYPES` each mode to the tick its topics carry
(:func:`backend.feed.tick_topic`). On stdout the backend prints :data:`BackendLine` events
(:mod:`backend.__main__`). ``SYS.HEALTH`` and the stdout lines are tagged unions: ``component`` and
``event`` say which type a message is.

Producers build these types and the publisher encodes them; readers (the desktop app, the headless
runner, the self-test, the benchmarks) decode with :func:`decode` and :func:`decode_line`, which
check every field and raise :class:`MalformedMessage` naming the topic and the field that does not
match (``$.connections[0].symbols``). A reader ignores the fields it does not know, so a newer
backend may add some. ``docs/bus.md`` is rendered from these types (:mod:`backend.bus.document`).

The ticks' producers (the brokers' normalisers) build plain dicts of these fields: they run for
every tick, and a dict encoded with orjson is cheaper than a Struct built by keyword. The types
here are for the readers and the tests.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from backend.feed import (
    CLIENTS_TOPIC,
    DEPTH,
    HEALTH_TOPIC,
    LOG_TOPIC,
    LTP,
    MOVES_TOPIC,
    POOL_TOPIC,
    QUOTE,
    TOPIC_MODES,
)

EpochSeconds = Annotated[float, Meta(description="When, in epoch seconds.")]
ConnectionIndex = Annotated[
    int,
    Meta(
        description="The pooled connection, numbered from 1 over every account: the first "
        "account's connections first, each account given as many numbers as it may open."
    ),
]
AccountName = Annotated[
    str, Meta(description="The broker account it belongs to, by the name the trader gave it.")
]
ConnectionState = Annotated[
    str,
    Meta(
        description="The connection's state: `connecting`, `connected`, `reconnecting`, `down`, "
        "or `session_expired` (refused for its session until the session is renewed)."
    ),
]
StateReason = Annotated[
    str, Meta(description="Why it is in that state, as the broker said; empty when connected.")
]
WebSocketUrl = Annotated[
    str,
    Meta(description="The client API, as a client on this machine dials it (`ws://`, `wss://`)."),
]
BusUrl = Annotated[str, Meta(description="The bus, as a subscriber on this machine dials it.")]
TlsFingerprint = Annotated[
    str | None,
    Meta(description="SHA-256 of the client API's TLS certificate, hex; null without TLS."),
]
BusPublicKey = Annotated[
    str | None, Meta(description="The bus's CURVE public key (Z85); null without CURVE.")
]


class MalformedMessage(ValueError):
    """A message that does not match its type; says where it came from and which field."""


# -- SYS.POOL ----------------------------------------------------------------------------------


class ConnectionStats(Struct, frozen=True, kw_only=True):
    """One pooled broker connection, an entry of ``SYS.POOL``'s ``connections``."""

    index: ConnectionIndex
    account: AccountName = ""
    symbols: Annotated[int, Meta(description="Symbols it holds.")]
    capacity: Annotated[int, Meta(description="Symbols it may hold.")]
    state: ConnectionState
    reason: StateReason
    ticks_per_second: Annotated[
        float, Meta(description="Ticks received per second since the previous statistics.")
    ]
    ticks: Annotated[int, Meta(description="Ticks received since it opened.")]
    ticks_shed: Annotated[
        int,
        Meta(
            description="Ticks not published: a newer one of the same subscription came with them."
        ),
    ]
    ticks_dropped: Annotated[
        int, Meta(description="Ticks it could not normalise or publish, and dropped.")
    ]
    feeds_healed: Annotated[
        int, Meta(description="Times a silent feed was healed: subscribed again, or reconnected.")
    ]
    last_tick_age_ms: Annotated[
        int | None, Meta(description="Milliseconds since its last tick; null before the first.")
    ]
    peak_symbols: Annotated[int, Meta(description="The most symbols it has held.")]


class AccountStats(Struct, frozen=True, kw_only=True):
    """One broker account of the pool: its load, its state, and the symbols moved off it and
    back (:data:`~backend.feed.FAILOVER`, :data:`~backend.feed.RETURN`)."""

    name: Annotated[str, Meta(description="The name the trader gave the account.")]
    broker: Annotated[str, Meta(description="Its broker (`angel`, `zerodha`, ...).")]
    user_id: Annotated[str, Meta(description="Who the account is at the broker.")]
    serving: Annotated[
        bool,
        Meta(
            description="Whether it can take symbols: its session lives and no connection of "
            "its has been down longer than `FAILOVER_SECONDS`."
        ),
    ]
    session_problem: Annotated[
        str, Meta(description="Why it has no session with the broker; empty while it has one.")
    ]
    capacity: Annotated[int, Meta(description="Symbols its connections may hold.")]
    symbols: Annotated[int, Meta(description="Symbols its connections hold, borrowed ones too.")]
    borrowed: Annotated[
        int, Meta(description="Of those, symbols it carries for accounts that cannot serve them.")
    ]
    lent: Annotated[int, Meta(description="Its own symbols other accounts carry now.")]
    failed_over: Annotated[int, Meta(description="Symbols moved off it, since the start.")]
    returned: Annotated[int, Meta(description="Symbols moved back to it, since the start.")]
    displaced: Annotated[
        int,
        Meta(description="Borrowed symbols it gave up for room its own needed, since the start."),
    ]


class PoolStats(Struct, frozen=True, kw_only=True):
    """``SYS.POOL``: capacity, load and health of the pool and of each connection; published on
    every change and every second. With several accounts the figures are their sums."""

    time: EpochSeconds
    broker: Annotated[
        str, Meta(description="The (first account's) broker (`angel`, `zerodha`, `simulator`).")
    ]
    user_id: Annotated[str, Meta(description="The (first) broker account.")]
    max_connections: Annotated[int, Meta(description="Connections the pool may open.")]
    max_symbols_per_connection: Annotated[int, Meta(description="Symbols a connection may hold.")]
    capacity: Annotated[int, Meta(description="Symbols the pool may hold.")]
    total_symbols: Annotated[int, Meta(description="Symbols held, over every connection.")]
    active_connections: Annotated[int, Meta(description="Connections open.")]
    peak_symbols: Annotated[int, Meta(description="The most symbols the pool has held.")]
    peak_connections: Annotated[int, Meta(description="The most connections open at once.")]
    utilisation_percent: Annotated[
        float, Meta(description="Symbols held, in percent of the capacity, to two places.")
    ]
    session_problem: Annotated[
        str,
        Meta(description="Why the account has no session with the broker; empty while it has one."),
    ]
    connections: Annotated[
        list[ConnectionStats], Meta(description="The open connections, in index order.")
    ]
    accounts: Annotated[
        list[AccountStats], Meta(description="The broker accounts, in the trader's order.")
    ] = []


class SymbolsMoved(Struct, frozen=True, kw_only=True):
    """``SYS.MOVES``: symbols moved from one broker account to another, one message per batch."""

    time: EpochSeconds
    kind: Annotated[
        str,
        Meta(
            description="`failover` (their account cannot serve them), `return` (back on their "
            "own account, make-before-break) or `displaced` (the account carrying them needed the "
            "room for its own: they wait for their account, their holders told)."
        ),
    ]
    from_account: Annotated[str, Meta(description="The account that carried them.")]
    to_account: Annotated[
        str,
        Meta(
            description="The account holding them now (for `displaced`, their own, where they "
            "wait for it to be back)."
        ),
    ]
    reason: Annotated[str, Meta(description="Why, for people.")]
    symbols: Annotated[
        list[str], Meta(description="The symbols, `EXCHANGE:SYMBOL`, in the order subscribed.")
    ]
    connections: Annotated[
        list[int], Meta(description="The connection now holding each symbol, in that order.")
    ] = []


# -- SYS.HEALTH --------------------------------------------------------------------------------


class ConnectionHealth(Struct, frozen=True, kw_only=True, tag_field="component", tag="connection"):
    """``SYS.HEALTH`` of one pooled connection: published when its state or reason changes."""

    connection: ConnectionIndex
    state: ConnectionState
    reason: StateReason
    time: EpochSeconds
    account: AccountName = ""


class BackendHealth(Struct, frozen=True, kw_only=True, tag_field="component", tag="backend"):
    """``SYS.HEALTH`` of the backend: ``ready`` once it serves, ``down`` (reason ``stopped``) when
    it stops; with where it serves."""

    state: Annotated[str, Meta(description="`ready` or `down`.")]
    reason: Annotated[str, Meta(description="Why it is in that state; empty when ready.")]
    time: EpochSeconds
    ws: Annotated[
        str | None,
        Meta(
            description="The client API, as a client on this machine dials it; null if it never "
            "listened."
        ),
    ]
    zmq: BusUrl
    tls_fingerprint: TlsFingerprint
    bus_public_key: BusPublicKey


#: `SYS.HEALTH`: a connection's or the backend's, told apart by ``component``.
Health = ConnectionHealth | BackendHealth


# -- SYS.CLIENTS -------------------------------------------------------------------------------


class ClientStats(Struct, frozen=True, kw_only=True):
    """One client of the client API, an entry of ``SYS.CLIENTS``' ``sessions``."""

    client: Annotated[int, Meta(description="The client's number in this process, from 1.")]
    peer: Annotated[str, Meta(description="Where it connects from, `host:port`.")]
    connected_at: Annotated[float, Meta(description="When it connected, in epoch seconds.")]
    authenticated: Annotated[bool, Meta(description="Whether it has given the API key.")]
    subscriptions: Annotated[int, Meta(description="Subscriptions it holds.")]
    symbols: Annotated[
        list[tuple[str, str, int]],
        Meta(description="What it holds: `[symbol, exchange, mode]` each, sorted."),
    ]
    sent: Annotated[int, Meta(description="Frames written to it.")]
    queued: Annotated[int, Meta(description="Frames waiting in its outbox.")]
    conflated: Annotated[
        int, Meta(description="Ticks its outbox replaced with newer ones of the same subscription.")
    ]
    throttled: Annotated[
        int,
        Meta(description="Ticks its rate limit replaced with newer ones (`WS_MIN_INTERVAL_MS`)."),
    ]


class ClientApiStats(Struct, frozen=True, kw_only=True):
    """The client API's figures (:meth:`backend.proxy.server.WebSocketProxy.stats`)."""

    url: WebSocketUrl
    clients: Annotated[int, Meta(description="Clients connected.")]
    subscriptions: Annotated[int, Meta(description="Distinct subscriptions held by clients.")]
    ticks_received: Annotated[
        int, Meta(description="Ticks the client API has taken from the pool.")
    ]
    ticks_malformed: Annotated[int, Meta(description="Ticks it could not parse.")]
    refused_connections: Annotated[
        int, Meta(description="Connections closed for too many from one address.")
    ]
    failed_authentications: Annotated[int, Meta(description="Wrong API keys given.")]
    delayed_authentications: Annotated[
        int, Meta(description="Authentications slowed down after wrong keys from their address.")
    ]
    malformed_messages: Annotated[
        int, Meta(description="Client messages that were not understood.")
    ]
    server_errors: Annotated[
        int, Meta(description="Client messages that failed inside the server.")
    ]
    sessions: Annotated[list[ClientStats], Meta(description="The clients, in number order.")]


class ClientsStats(ClientApiStats, frozen=True, kw_only=True):
    """``SYS.CLIENTS``: the client API's figures and the process's asyncio tasks, every second."""

    tasks: Annotated[int, Meta(description="asyncio tasks in the backend process.")]


# -- SYS.LOG -----------------------------------------------------------------------------------


class LogRecord(Struct, frozen=True, kw_only=True):
    """``SYS.LOG``: one log record of the backend process (:mod:`backend.logs.bus_handler`)."""

    time: Annotated[float, Meta(description="When it was made, in epoch seconds.")]
    level: Annotated[str, Meta(description="`DEBUG`, `INFO`, `WARNING`, `ERROR` or `CRITICAL`.")]
    logger: Annotated[str, Meta(description="The logger's name, e.g. `feedpool.pool`.")]
    connection: Annotated[
        int | None, Meta(description="The pooled connection it is about, or null.")
    ]
    sequence: Annotated[
        int | None,
        Meta(
            description="Its number in the process, as on stderr; null if records are not numbered."
        ),
    ]
    message: Annotated[
        str, Meta(description="The text, with the traceback of an exception after it.")
    ]


# -- ticks -------------------------------------------------------------------------------------


class LtpTick(Struct, frozen=True, kw_only=True):
    """A tick of an LTP subscription (topic ``{EXCHANGE}_{SYMBOL}_LTP``)."""

    symbol: Annotated[str, Meta(description="The symbol, e.g. `SBIN`.")]
    exchange: Annotated[str, Meta(description="The exchange, e.g. `NSE`.")]
    mode: Annotated[int, Meta(description="The subscription mode: 1 LTP, 2 Quote, 3 Depth.")]
    ltp: Annotated[float, Meta(description="Last traded price, rupees.")]
    ltt: Annotated[int, Meta(description="Last trade time, epoch milliseconds.")]
    timestamp: Annotated[int, Meta(description="The exchange's timestamp, epoch milliseconds.")]


class QuoteTick(LtpTick, frozen=True, kw_only=True):
    """A tick of a Quote subscription (topic ``{EXCHANGE}_{SYMBOL}_QUOTE``): the LTP fields and the
    day's quote."""

    open: Annotated[float, Meta(description="The day's open, rupees.")]
    high: Annotated[float, Meta(description="The day's high, rupees.")]
    low: Annotated[float, Meta(description="The day's low, rupees.")]
    close: Annotated[float, Meta(description="The previous close, rupees.")]
    volume: Annotated[int, Meta(description="The day's traded volume.")]
    last_trade_quantity: Annotated[int, Meta(description="Quantity of the last trade.")]
    average_price: Annotated[float, Meta(description="The day's average traded price, rupees.")]
    avg_trade_price: Annotated[float, Meta(description="The same as `average_price`.")]
    total_buy_quantity: Annotated[int, Meta(description="Quantity bid, over the whole book.")]
    total_sell_quantity: Annotated[int, Meta(description="Quantity offered, over the whole book.")]
    change: Annotated[float, Meta(description="`ltp` less `close`, rupees; 0 without a close.")]
    change_percent: Annotated[
        float, Meta(description="`change` in percent of `close`, to two places; 0 without a close.")
    ]


class DepthLevel(Struct, frozen=True, kw_only=True):
    """One price level of a side of the book; an empty level is all zeros."""

    price: Annotated[float, Meta(description="Price, rupees.")]
    quantity: Annotated[int, Meta(description="Quantity at that price.")]
    orders: Annotated[int, Meta(description="Orders at that price.")]


class Book(Struct, frozen=True, kw_only=True):
    """The best five price levels a side."""

    buy: Annotated[list[DepthLevel], Meta(description="Bids, best first.")]
    sell: Annotated[list[DepthLevel], Meta(description="Offers, best first.")]


class DepthTick(QuoteTick, frozen=True, kw_only=True):
    """A tick of a Depth subscription (topic ``{EXCHANGE}_{SYMBOL}_DEPTH``): the Quote fields, open
    interest, circuit limits and the book."""

    oi: Annotated[int, Meta(description="Open interest; 0 where the instrument has none.")]
    upper_circuit: Annotated[float, Meta(description="Upper circuit limit, rupees; 0 if unknown.")]
    lower_circuit: Annotated[float, Meta(description="Lower circuit limit, rupees; 0 if unknown.")]
    depth: Annotated[Book, Meta(description="The book, best five a side.")]


Tick = LtpTick | QuoteTick | DepthTick


# -- stdout ------------------------------------------------------------------------------------


class Ready(Struct, frozen=True, kw_only=True, tag_field="event", tag="ready"):
    """The backend serves: where, and what to trust there. Printed once everything listens."""

    ws: WebSocketUrl
    zmq: BusUrl
    tls_fingerprint: TlsFingerprint
    bus_public_key: BusPublicKey
    pid: Annotated[int, Meta(description="The backend's process id.")]
    broker: Annotated[str, Meta(description="The broker it pools (`BROKER`).")]


class StartupFailure(Struct, frozen=True, kw_only=True, tag_field="event", tag="error"):
    """The backend cannot start; printed instead of the ready line, before it exits."""

    code: Annotated[
        str, Meta(description="What stopped it, e.g. `INVALID_SETTING`, `WS_PORT_UNAVAILABLE`.")
    ]
    message: Annotated[str, Meta(description="What to fix, for people; never a secret's value.")]


class BusClient(Struct, frozen=True, kw_only=True, tag_field="event", tag="bus_client"):
    """``--allow-bus-client NAME``: the subscriber's key pair, allowed on the CURVE bus."""

    name: Annotated[str, Meta(description="The subscriber's name.")]
    public_key_file: Annotated[str, Meta(description="Its public key's file.")]
    secret_key_file: Annotated[str, Meta(description="Its key pair's file, for it alone to read.")]
    public_key: Annotated[str, Meta(description="Its public key (Z85).")]
    server_public_key: Annotated[str, Meta(description="The bus's public key (Z85).")]


#: A JSON line the backend prints on stdout, told apart by ``event``.
BackendLine = Ready | StartupFailure | BusClient

# -- decoding ----------------------------------------------------------------------------------

#: The type of each ``SYS.`` topic's messages.
SYSTEM_TYPES: dict[str, Any] = {
    POOL_TOPIC: PoolStats,
    HEALTH_TOPIC: Health,
    CLIENTS_TOPIC: ClientsStats,
    LOG_TOPIC: LogRecord,
    MOVES_TOPIC: SymbolsMoved,
}
#: The tick of each mode, by mode.
TICK_TYPES: dict[int, type[LtpTick]] = {LTP: LtpTick, QUOTE: QuoteTick, DEPTH: DepthTick}

_DECODERS = {
    **{topic: msgspec.json.Decoder(kind) for topic, kind in SYSTEM_TYPES.items()},
    **{f"_{TOPIC_MODES[mode]}": msgspec.json.Decoder(kind) for mode, kind in TICK_TYPES.items()},
}
_LINES = msgspec.json.Decoder(BackendLine)


def decode(topic: str, payload: bytes) -> Struct | None:
    """The message ``payload`` is on ``topic``: a ``SYS.`` topic's type, or a tick topic's mode's
    tick; ``None`` for a topic FeedPool does not publish. :class:`MalformedMessage` if the payload
    does not match the type."""
    decoder = _DECODERS.get(topic) or _DECODERS.get(topic[topic.rfind("_") :])
    if decoder is None:
        return None
    try:
        return decoder.decode(payload)
    except msgspec.DecodeError as exc:  # ValidationError too
        raise MalformedMessage(f"malformed {topic} message: {exc}") from None


def decode_line(line: bytes | str) -> BackendLine | None:
    """The event a line of the backend's stdout carries; ``None`` for a line that is no JSON
    object with an ``event``. :class:`MalformedMessage` for an event that does not match its
    type."""
    try:
        return _LINES.decode(line)
    except msgspec.DecodeError as exc:
        try:
            event = msgspec.json.decode(line)
        except msgspec.DecodeError:
            return None
        if not isinstance(event, dict) or "event" not in event:
            return None
        raise MalformedMessage(f"malformed {event['event']!r} line: {exc}") from None
