"""Zerodha's KiteTicker as the bundled simulator plays it: handshake, requests, tick messages.

Where Kite's documentation is silent, the simulator does this:

- The handshake takes ``api_key`` and ``access_token`` from the query string; a missing or
  wrong one, or an access token whose session has ended, gets HTTP 403 (Kite's
  ``TokenException`` text in the body and in ``x-error-message``).
- A new subscription is in quote mode. A ``mode`` request moves held tokens to that mode and
  sends each a snapshot; tokens it names that are not held are ignored.
- A subscribe request that would pass the connection's instrument limit takes the tokens that
  fit, in request order, and answers the rest with one text ``{"type": "error", "data": ...}``;
  those get nothing, and the tokens already held keep streaming.
- A request that is not understood gets an error text frame naming what was wrong; the
  connection stays open.
- Every wake-up's ticks go out as one binary message of packets (at most :data:`MESSAGE_PACKETS`
  each), and a 1-byte heartbeat goes out every :data:`HEARTBEAT_SECONDS`.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Hashable

import numpy as np
from aiohttp import web

from backend.brokers.zerodha.protocol import (
    FEEDPOOL_MODES,
    FULL_PACKET,
    HEARTBEAT,
    INDEX_FULL_PACKET,
    INDEX_QUOTE_PACKET,
    INDICES,
    LTP_PACKET,
    QUOTE_PACKET,
    SEGMENTS,
    SET_MODE,
    SUBSCRIBE,
    ProtocolError,
    error_message,
    parse_request,
    segment_of,
)
from backend.brokers.zerodha.simulated_logins import KiteLogins
from backend.feed import DEPTH, DEPTH_LEVELS, LTP, QUOTE
from backend.simulator.batch import write_frames
from backend.simulator.connection import SimulatedConnection
from backend.simulator.credentials import SimulatorCredentials, same_token
from backend.simulator.layouts import record, shared_fields
from backend.simulator.market import COLUMN, QUOTE_FIGURES
from backend.wire.frames import FIN_BINARY, frame

PATH = "/"
INVALID_SESSION = "Incorrect `api_key` or `access_token`."
MESSAGE_PACKETS = 500
HEARTBEAT_SECONDS = 1.0

# Each packet as a record type behind its length, by (mode, whether the token is an index).
LENGTH = np.dtype(">u2")
_COUNT = struct.Struct(">H")
_QUOTE = ("token", "ltp", *QUOTE_FIGURES)
_FULL = (
    "last_trade_time",
    "open_interest",
    "oi_day_high",
    "oi_day_low",
    "exchange_timestamp",
    ("depth", ("quantity", "price", "orders"), 2 * DEPTH_LEVELS),
)
_INDEX_QUOTE = ("token", "ltp", "high", "low", "open", "close", "change")
_LAYOUTS = {
    (LTP, False): (LTP_PACKET, ("token", "ltp")),
    (LTP, True): (LTP_PACKET, ("token", "ltp")),
    (QUOTE, False): (QUOTE_PACKET, _QUOTE),
    (QUOTE, True): (INDEX_QUOTE_PACKET, _INDEX_QUOTE),
    (DEPTH, False): (FULL_PACKET, (*_QUOTE, *_FULL)),
    (DEPTH, True): (INDEX_FULL_PACKET, (*_INDEX_QUOTE, "exchange_timestamp")),
}
PACKETS = {
    key: record(layout, names, prefix=[("length", LENGTH.str)])
    for key, (layout, names) in _LAYOUTS.items()
}
# The market's figures each packet copies: its fields named as the market's rows name them.
TRADE_FIELDS = {kind: shared_fields(kind, COLUMN) for kind in PACKETS.values()}
_EXCHANGES = {
    SEGMENTS["nse"]: "NSE",
    SEGMENTS["nfo"]: "NFO",
    SEGMENTS["cds"]: "CDS",
    SEGMENTS["bse"]: "BSE",
    SEGMENTS["bfo"]: "BFO",
    SEGMENTS["mcx"]: "MCX",
    INDICES: "NSE_INDEX",
}


def _message(packets: list[bytes], count: int) -> bytes:
    """One binary message of ``count`` packets (each behind its length), framed."""
    return frame(FIN_BINARY, _COUNT.pack(count) + b"".join(packets))


def exchange_of(key: Hashable) -> str:
    """The exchange of a token the master does not hold, from its segment."""
    return _EXCHANGES.get(segment_of(key), "")


def refused(logins: KiteLogins, request: web.Request) -> str | None:
    """Kite's message when the query's ``api_key`` or ``access_token`` is missing or not good."""
    api_key = logins.credentials.api_key
    for name, good in (
        ("api_key", lambda sent: same_token(sent, api_key)),
        ("access_token", logins.good_access_token),
    ):
        values = request.query.getall(name, [])
        if len(values) != 1 or not good(values[0]):
            return INVALID_SESSION
    return None


def account(credentials: SimulatorCredentials, request: web.Request) -> str:
    """Connections are counted per API key; only the accepted one gets this far."""
    return credentials.client_code


class KiteTickerConnection(SimulatedConnection):
    """One simulated KiteTicker connection. Kite holds each token in one mode."""

    MODES = (LTP, QUOTE, DEPTH)
    LABEL = np.dtype([("token", np.uint32), ("index", np.bool_)])

    def background(self) -> list:
        return [self._heartbeat()]

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            await self.websocket.send_bytes(HEARTBEAT)

    async def answer(self, text: str | bytes) -> None:
        if isinstance(text, bytes):
            await self._refuse("binary frames are not requests")
            return
        try:
            request = parse_request(text)
        except ProtocolError as exc:
            await self._refuse(str(exc))
            return
        if request.action == SUBSCRIBE:
            await self._subscribe(request.tokens)
        elif request.action == SET_MODE:
            mode = FEEDPOOL_MODES[request.mode]
            for token in request.tokens:
                if self.holds(token) and self.modes(token) != [mode]:
                    self.drop(token)
                    self.hold(token, mode)
        else:
            for token in request.tokens:
                self.drop(token)

    async def _refuse(self, reason: str) -> None:
        self.log_refusal("error", reason)
        await self.websocket.send_str(error_message(reason))

    async def _subscribe(self, tokens: tuple[int, ...]) -> None:
        new = [t for t in dict.fromkeys(tokens) if t not in self.held]
        room = max(self.max_tokens - len(self.held), 0)
        for token in new[:room]:
            self.hold(token, QUOTE)
        over = len(new) - room
        if over > 0:
            await self._refuse(
                f"Subscription limit exceeded: {self.max_tokens} instruments per connection; "
                f"{over} of {len(new)} not subscribed"
            )

    def label(self, key: Hashable) -> tuple:
        return key, segment_of(key) == INDICES

    def encode(self, mode: int, rows: np.ndarray, timestamp_ms: int) -> list[np.ndarray]:
        labels = self._labels[rows]
        index = labels["index"]
        if index.any():
            return [
                self._pack(PACKETS[mode, is_index], rows[chosen], labels[chosen], timestamp_ms)
                for is_index, chosen in ((False, ~index), (True, index))
                if chosen.any()
            ]
        return [self._pack(PACKETS[mode, False], rows, labels, timestamp_ms)]

    def _pack(
        self, kind: np.dtype, rows: np.ndarray, labels: np.ndarray, timestamp_ms: int
    ) -> np.ndarray:
        day = self.market.figures[rows]
        packets = np.empty(len(rows), kind)
        packets["length"] = kind.itemsize - LENGTH.itemsize
        packets["token"] = labels["token"]
        for name, column in TRADE_FIELDS[kind]:
            packets[name] = day[:, column]
        names = kind.names
        if "change" in names:
            packets["change"] = day[:, COLUMN["ltp"]] - day[:, COLUMN["close"]]
        if "exchange_timestamp" in names:
            packets["exchange_timestamp"] = timestamp_ms // 1000
        if "depth" in names:
            oi = day[:, COLUMN["open_interest"]]
            packets["oi_day_high"] = packets["oi_day_low"] = oi
            quantities, prices, orders = self.market.book(rows)
            depth = packets["depth"]
            depth["quantity"], depth["price"], depth["orders"] = quantities, prices, orders
        return packets

    def write(self, packets: list[np.ndarray]) -> None:
        """Binary messages of at most :data:`MESSAGE_PACKETS` packets each, in one write."""
        chunks, count = [], 0
        frames = []
        for block in packets:
            for start in range(0, len(block), MESSAGE_PACKETS):
                part = block[start : start + MESSAGE_PACKETS]
                if count + len(part) > MESSAGE_PACKETS:
                    frames.append(_message(chunks, count))
                    chunks, count = [], 0
                chunks.append(part.tobytes())
                count += len(part)
        frames.append(_message(chunks, count))
        write_frames(self.request, self.websocket, b"".join(frames))
