"""Angel One's SmartStream 2.0 as the bundled simulator plays it: handshake, requests, packets.

- The handshake is checked the way the broker checks it: the four credential headers (HTTP 401
  with ``x-error-message`` naming the bad one), at ``/smart-stream``. The JWT and the feed token
  are good while their session is
  (:class:`~backend.brokers.angel.simulated_logins.AngelLogins`).
- Requests are answered in order: subscribe and unsubscribe, the text ``ping`` (``pong``), E1001
  for a malformed request and E1002 for a subscription past the token limit, which refuses the
  whole request while the tokens already held keep streaming.
- Ticks go out one packet per binary frame, as the broker sends them.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Hashable

import numpy as np
from aiohttp import web

from backend.brokers.angel.protocol import (
    ERROR_INVALID_PAYLOAD,
    ERROR_SUBSCRIPTION_LIMIT,
    EXCHANGE_TYPES,
    HTTP_AUTH_ERRORS,
    LTP,
    LTP_PACKET,
    QUOTE,
    QUOTE_PACKET,
    SNAP_QUOTE,
    SNAP_QUOTE_PACKET,
    SUBSCRIBE,
    ProtocolError,
    Request,
    error_frame,
    parse_request,
)
from backend.brokers.angel.simulated_logins import AngelLogins
from backend.feed import DEPTH_LEVELS
from backend.simulator.batch import write_frames
from backend.simulator.connection import SimulatedConnection
from backend.simulator.credentials import SimulatorCredentials, same_token
from backend.simulator.layouts import record, shared_fields
from backend.simulator.market import COLUMN, QUOTE_FIGURES
from backend.wire.frames import FIN_BINARY, header

PATH = "/smart-stream"
_EXCHANGES = {number: name for name, number in reversed(EXCHANGE_TYPES.items())} | {7: "NCX"}

# Each mode's packet as a record type, behind its frame's header.
_HEADER = ("mode", "exchange_type", "token", "sequence", "exchange_timestamp", "ltp")
_SNAP_QUOTE = (
    "last_trade_time",
    "open_interest",
    "open_interest_change",
    ("book", ("buy", "quantity", "price", "orders"), 2 * DEPTH_LEVELS),
    "upper_circuit",
    "lower_circuit",
    "week52_high",
    "week52_low",
)


def _frame(layout: struct.Struct, names: tuple) -> tuple[np.dtype, np.ndarray]:
    """A mode's record type behind its frame's header, and that header's bytes."""
    head = np.frombuffer(header(FIN_BINARY, layout.size), np.uint8)
    return record(layout, names, prefix=[("frame", f"{len(head)}u1")]), head


FRAMES = {
    LTP: _frame(LTP_PACKET, _HEADER),
    QUOTE: _frame(QUOTE_PACKET, (*_HEADER, *QUOTE_FIGURES)),
    SNAP_QUOTE: _frame(SNAP_QUOTE_PACKET, (*_HEADER, *QUOTE_FIGURES, *_SNAP_QUOTE)),
}
# The market's figures each mode carries: its fields named as the market's rows name them.
TRADE_FIELDS = {mode: shared_fields(kind, COLUMN) for mode, (kind, _) in FRAMES.items()}
# The book's levels: five buy levels (flag 1), then five sell.
BOOK_SIDES = np.repeat([1, 0], DEPTH_LEVELS)


def exchange_of(key: Hashable) -> str:
    """The exchange of an ``(exchangeType, token)`` key, for a token the master does not hold."""
    return _EXCHANGES.get(key[0], "")


def refused(logins: AngelLogins, request: web.Request) -> str | None:
    """The broker's ``x-error-message`` for the first credential header missing or wrong.

    ``Authorization`` may carry the JWT with or without a ``Bearer`` prefix, on either side. A
    header sent more than once is wrong. :obj:`None` means the request is authenticated.
    """
    credentials = logins.credentials
    good = {
        "Authorization": logins.good_jwt,
        "x-client-code": lambda sent: same_token(sent, credentials.client_code),
        "x-api-key": lambda sent: same_token(sent, credentials.api_key),
        "x-feed-token": logins.good_feed_token,
    }
    for name, message in HTTP_AUTH_ERRORS.items():
        values = request.headers.getall(name, [])
        if len(values) != 1 or not good[name](values[0]):
            return message
    return None


def account(credentials: SimulatorCredentials, request: web.Request) -> str:
    """Connections are counted per client code."""
    return request.headers["x-client-code"]


def _correlation_id(text: str) -> str:
    """The correlationID of a malformed request, to echo in its E1001, when it has one."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return ""
    correlation_id = message.get("correlationID") if isinstance(message, dict) else None
    return correlation_id if isinstance(correlation_id, str) else ""


class SmartStreamConnection(SimulatedConnection):
    """One simulated SmartStream connection."""

    async def answer(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            await self._refuse(ERROR_INVALID_PAYLOAD, "", "binary frame")
            return
        if message == "ping":
            await self.websocket.send_str("pong")
            return
        try:
            request = parse_request(message)
        except ProtocolError as exc:
            await self._refuse(ERROR_INVALID_PAYLOAD, _correlation_id(message), str(exc))
            return
        if request.action == SUBSCRIBE:
            await self._subscribe(request)
        else:
            for token in request.tokens:
                self.drop(token, request.mode)

    async def _refuse(self, error: tuple[str, str], correlation_id: str, reason: str) -> None:
        self.log_refusal(error[0], reason)
        await self.websocket.send_str(error_frame(error, correlation_id))

    async def _subscribe(self, request: Request) -> None:
        """Hold every token of ``request`` in its mode, or none if that passes the token limit."""
        tokens = dict.fromkeys(request.tokens)  # distinct, in request order
        new = sum(key not in self.held for key in tokens)
        if len(self.held) + new > self.max_tokens:
            reason = f"{len(self.held)} tokens held + {new} new > {self.max_tokens}"
            await self._refuse(ERROR_SUBSCRIPTION_LIMIT, request.correlation_id, reason)
            return
        for token in tokens:
            self.hold(token, request.mode)

    MODES = (LTP, QUOTE, SNAP_QUOTE)
    LABEL = np.dtype([("exchange_type", np.uint8), ("token", "S25")])

    def label(self, key: Hashable) -> tuple:
        exchange_type, token = key
        return exchange_type, token.encode("ascii")

    def encode(self, mode: int, rows: np.ndarray, timestamp_ms: int) -> list[np.ndarray]:
        record, frame = FRAMES[mode]
        day = self.market.figures[rows]
        labels = self._labels[rows]
        packets = np.empty(len(rows), record)
        packets["frame"] = frame
        packets["mode"] = mode
        packets["exchange_type"] = labels["exchange_type"]
        packets["token"] = labels["token"]
        packets["exchange_timestamp"] = timestamp_ms
        for name, column in TRADE_FIELDS[mode]:
            packets[name] = day[:, column]
        if mode == SNAP_QUOTE:
            packets["open_interest_change"] = 0  # official clients read it inconsistently
            book = packets["book"]
            book["buy"] = BOOK_SIDES
            book["quantity"], book["price"], book["orders"] = self.market.book(rows)
        return [packets]

    def write(self, packets: list[np.ndarray]) -> None:
        """One binary frame per packet, as the broker sends them; the batch in one write."""
        write_frames(self.request, self.websocket, b"".join(p.tobytes() for p in packets))
