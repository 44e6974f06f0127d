"""Noren OMS's market-data WebSocket as the bundled simulator plays it, for any vendor.

- The upgrade at the vendor's WebSocket path is accepted whatever it carries: Noren
  authenticates a socket by its first message. A connect (``c`` with a susertoken, ``a`` with an
  access token) is answered ``ck`` / ``ak`` with ``s`` ``OK``, or ``NOT_OK`` and Noren's words
  for an ended session (:data:`~backend.brokers.noren.protocol.INVALID_SESSION`) when the token
  is not the account's good one; the socket stays open, as the official client expects. Until a
  connect is accepted, subscriptions are ignored, as live servers are reported to do.
- Subscriptions (``t``, ``d``) are answered per scrip with the snapshot (``tk``, ``dk``: every
  field), then each trade with an update (``tf``, ``df``: ``t``, ``e``, ``tk``, ``ft`` and the
  fields that changed since the last message), every value a string. A scrip subscribed again
  gets its snapshot again. Unsubscribes (``u``, ``ud``) are answered ``uk`` / ``udk``; a text
  heartbeat ``{"t":"h"}`` is answered ``{"t":"hk"}``, and aiohttp answers the official clients'
  ping frames with pongs.
- Past the connection's ``max_tokens`` distinct scrips a subscription is accepted and gets no
  data at all, as Shoonya is reported to do past about 100 (``--max-tokens`` sets the cap).
- Chosen, where the facts are silent: one WebSocket per session, and a second closes the first
  (code 1008, the dialect's ``closes_oldest``): the session's feed follows its newest socket.
  When the sessions expire, every open socket is closed (code 1008) and the next connect is
  answered ``NOT_OK``.
- The snapshots carry ``pp``, ``ls`` and ``ti`` but no trading symbol (``ts``); indices are sent
  like any scrip. The depth's ``ltt`` is the last trade's time of day in India.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Hashable
from urllib.parse import urlsplit

import numpy as np
from aiohttp import WSCloseCode, web

from backend.brokers.noren import protocol
from backend.brokers.noren.protocol import DEPTH_FEED, TOUCHLINE, ProtocolError
from backend.brokers.noren.vendors import Vendor
from backend.feed import DEPTH, DEPTH_LEVELS, EXCHANGES, LTP
from backend.simulator.batch import write_frames
from backend.simulator.connection import SimulatedConnection
from backend.simulator.credentials import SimulatorCredentials
from backend.simulator.logins import Logins
from backend.simulator.market import COLUMN
from backend.wire.frames import FIN_TEXT, frame

log = logging.getLogger("feedpool.simulator")

#: Where :func:`refused` leaves the logins, for the connection to check its connect message.
LOGINS = web.RequestKey("noren_logins", Logins)
#: The simulator's modes: a bit each for the touchline and the depth of a scrip.
FEED_MODES = {TOUCHLINE: LTP, DEPTH_FEED: DEPTH}
MODE_FEEDS = {mode: feed for feed, mode in FEED_MODES.items()}
CONNECTION_LIMIT = "one WebSocket per session"
INDIA = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
_QUOTE = (("o", "open"), ("h", "high"), ("l", "low"), ("c", "close"), ("ap", "average"))


def path(vendor: Vendor) -> str:
    """The vendor's WebSocket path, without the trailing slash (the simulator's URL has none)."""
    return urlsplit(vendor.ws_url).path.rstrip("/") or "/"


def exchange_of(key: Hashable) -> str:
    """FeedPool's exchange of a scrip key the master does not hold, if FeedPool has it."""
    exchange = str(key).partition("|")[0]
    return exchange if exchange in EXCHANGES else ""


def refused(logins: Logins, request: web.Request) -> None:
    """Never: the upgrade is accepted, and the connect message checked in the connection with
    ``logins`` (left on the request)."""
    request[LOGINS] = logins


def account(credentials: SimulatorCredentials, request: web.Request) -> str:
    """The session the socket serves: the simulator's one account (the upgrade names none)."""
    return credentials.client_code


class NorenFeedConnection(SimulatedConnection):
    """One simulated Noren WebSocket; a scrip is held on the touchline, the depth, or both."""

    MODES = (LTP, DEPTH)
    LABEL = np.dtype([("precision", np.uint8)])

    def __init__(self, *args, **options) -> None:
        super().__init__(*args, **options)
        self._logins: Logins = self.request[LOGINS]
        #: Who the accepted connect message was for; empty until one is accepted.
        self.user = ""
        #: The scrip key of each market row held, and what the last message of each (row, mode)
        #: told the client.
        self._keys: dict[int, str] = {}
        self._sent: dict[tuple[int, int], dict[str, str]] = {}
        #: Subscriptions past the cap: accepted, and never sent anything.
        self.silent: set[tuple[str, int]] = set()

    async def displace(self) -> None:
        await self.websocket.close(
            code=WSCloseCode.POLICY_VIOLATION, message=b"another socket of the session opened"
        )

    async def answer(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            self.log_refusal("binary", f"a binary frame of {len(message)} bytes, ignored")
            return
        try:
            request = protocol.parse_request(message)
        except ProtocolError as exc:
            self.log_refusal("request", f"{exc}; ignored")
            return
        kind = request.kind
        if kind in protocol.CONNECT_ACKS:
            good = self._logins.accepts(request.uid, request.token, kind)
            self.user = request.uid if good else ""
            if not good:
                self.log_refusal(protocol.NOT_OK, "connect with a token that is not good")
            await self.websocket.send_str(protocol.ack_message(kind, good, request.uid))
        elif kind == protocol.HEARTBEAT:
            await self.websocket.send_str(protocol.heartbeat_ack())
        elif not self.user:
            self.log_refusal(kind, "no connect accepted on this socket yet; ignored")
        elif kind in FEED_MODES:
            self._subscribe(request.keys, FEED_MODES[kind])
        else:
            feed = protocol.UNSUBSCRIBED_FEED[kind]
            for key in request.keys:
                self.drop(key, FEED_MODES[feed])
                self.silent.discard((key, FEED_MODES[feed]))
            await self.websocket.send_str(protocol.unsubscribed_message(feed, request.keys))

    def _subscribe(self, keys: tuple[str, ...], mode: int) -> None:
        for key in keys:
            if key not in self.held and len(self.held) >= self.max_tokens:
                self.silent.add((key, mode))
            else:
                self.hold(key, mode)

    def hold(self, key: Hashable, mode: int) -> None:
        """Hold ``key`` in ``mode``, its snapshot sent again if it was held already."""
        self.drop(key, mode)
        super().hold(key, mode)
        self._keys[self.held[key]] = str(key)

    def drop(self, key: Hashable, mode: int | None = None) -> None:
        row = self.held.get(key)
        if row is not None:
            for dropped in self.MODES if mode is None else (mode,):
                self._sent.pop((row, dropped), None)
        super().drop(key, mode)

    def label(self, key: Hashable) -> tuple:
        return (protocol.precision(str(key).partition("|")[0]),)

    def encode(self, mode: int, rows: np.ndarray, timestamp_ms: int) -> list[np.ndarray]:
        """Each row's snapshot, the first time, or else its update, as text frames."""
        feed = MODE_FEEDS[mode]
        frames = []
        for row in rows.tolist():
            current = self._fields(mode, row, timestamp_ms)
            previous = self._sent.get((row, mode))
            self._sent[row, mode] = current
            if previous is None:
                kind, fields = protocol.SNAPSHOTS[feed], current
            else:
                kind = protocol.UPDATES[feed]
                fields = {**protocol.changes(previous, current), "ft": current["ft"]}
            text = protocol.tick_message(kind, self._keys[row], fields)
            frames.append(frame(FIN_TEXT, text.encode()))
        return [np.frombuffer(b"".join(frames), np.uint8)]

    def _fields(self, mode: int, row: int, timestamp_ms: int) -> dict[str, str]:
        """Every field of ``row``'s touchline or depth as it stands, as Noren's strings."""
        day = self.market.figures[row]
        decimals = int(self._labels[row]["precision"])
        divisor = 1e7 if decimals == 4 else 100.0

        def price(units: int) -> str:
            return f"{units / divisor:.{decimals}f}"

        ltp, close = int(day[COLUMN["ltp"]]), int(day[COLUMN["close"]])
        fields = {
            "pp": str(decimals),
            "ls": str(day[COLUMN["lot"]]),
            "ti": price(day[COLUMN["tick"]]),
            "lp": price(ltp),
            "pc": f"{(ltp - close) * 100 / close:.2f}" if close else "0.00",
            "v": str(day[COLUMN["volume"]]),
            **{name: price(day[COLUMN[column]]) for name, column in _QUOTE},
            "oi": str(day[COLUMN["open_interest"]]),
            "ft": str(timestamp_ms // 1000),
        }
        quantities, prices, orders = (part[0] for part in self.market.book(np.array([row])))
        if mode == LTP:
            fields.update(
                bp1=price(prices[0]),
                bq1=str(quantities[0]),
                sp1=price(prices[DEPTH_LEVELS]),
                sq1=str(quantities[DEPTH_LEVELS]),
            )
            return fields
        traded = datetime.datetime.fromtimestamp(int(day[COLUMN["last_trade_time"]]), INDIA)
        fields.update(
            ltt=traded.strftime("%H:%M:%S"),
            ltq=str(day[COLUMN["last_quantity"]]),
            tbq=str(day[COLUMN["total_buy"]]),
            tsq=str(day[COLUMN["total_sell"]]),
            uc=price(day[COLUMN["upper_circuit"]]),
            lc=price(day[COLUMN["lower_circuit"]]),
        )
        fields["52h"] = price(day[COLUMN["week52_high"]])
        fields["52l"] = price(day[COLUMN["week52_low"]])
        for level in range(DEPTH_LEVELS):
            for side, at in (("b", level), ("s", DEPTH_LEVELS + level)):
                fields[f"{side}p{level + 1}"] = price(prices[at])
                fields[f"{side}q{level + 1}"] = str(quantities[at])
                fields[f"{side}o{level + 1}"] = str(orders[at])
        return fields

    def write(self, packets: list[np.ndarray]) -> None:
        """One text message per snapshot or update; the wake-up's in one write."""
        write_frames(self.request, self.websocket, b"".join(p.tobytes() for p in packets))
