"""Dhan's Live Market Feed as the bundled simulator plays it: handshake, requests, packets.

- The upgrade at ``/`` takes ``version``, ``token``, ``clientId`` and ``authType`` from the query
  string. Only ``version=2`` is played (HTTP 400 otherwise). Like Dhan, the simulator accepts
  the upgrade whatever the credentials, then refuses bad ones with a disconnect packet and the
  close: 808 for another client ID, 807 for a token that was good once (expired by
  :meth:`~backend.simulator.server.ExchangeSimulator.expire_sessions`, which sends 807 on every
  open connection too, or renewed), 809 for any other, and 806 when the account does not
  subscribe to the Data APIs (:attr:`~backend.brokers.dhan.simulated_logins.DhanLogins.data_apis`).
- One connection past the account's limit closes its oldest with 805 (the dialect's
  ``closes_oldest``), and is accepted.
- Requests are answered in order, and with nothing: subscribe (15, 17, 21) and unsubscribe (16,
  18, 22) per instrument and mode, and 12, which closes the connection. A subscribe that would
  take a connection past its instrument limit closes it with 804 (the annexure's "requested
  number of instruments exceeds limit"). A request that is not understood is logged and
  ignored, as is a binary frame, such as the 83-byte header the official client sends after 12.
- Every subscription of an instrument, in any mode, is followed by its previous-close packet and
  its snapshot; a quote subscription's packets are followed by an OI packet for a derivative.
- Every packet goes out as one binary message; a wake-up's packets go out in one write. The
  quote and full packets' day close is 0: Dhan sends it only after the market closes, and the
  simulated market never does.
"""

from __future__ import annotations

import struct
from collections.abc import Hashable

import numpy as np
from aiohttp import web

from backend.brokers.dhan.protocol import (
    CURRENCY_SEGMENTS,
    DISCONNECT_REQUEST,
    FEEDPOOL_MODES,
    FULL_PACKET,
    FULL_PACKET_CODE,
    OI_CODE,
    OI_PACKET,
    PREV_CLOSE_CODE,
    PREV_CLOSE_PACKET,
    QUOTE_PACKET,
    QUOTE_PACKET_CODE,
    SEGMENT_NAMES,
    TICKER_PACKET,
    TICKER_PACKET_CODE,
    TOKEN_EXPIRED,
    TOO_MANY_CONNECTIONS,
    TOO_MANY_INSTRUMENTS,
    UNSUBSCRIBE,
    ProtocolError,
    dhan_seconds,
    disconnect_packet,
    parse_request,
)
from backend.brokers.dhan.simulated_logins import DhanLogins
from backend.feed import DEPTH, DEPTH_LEVELS, LTP, QUOTE
from backend.simulator.batch import write_frames
from backend.simulator.connection import SimulatedConnection
from backend.simulator.credentials import SimulatorCredentials
from backend.simulator.layouts import record
from backend.simulator.market import COLUMN
from backend.wire.frames import FIN_BINARY, header

PATH = "/"
#: Where :func:`refused` leaves Dhan's verdict on the upgrade for the connection.
VERDICT = web.RequestKey("dhan_verdict", int | None)
VERSION_REFUSAL = (
    "the simulator plays Dhan's Live Market Feed v2: connect with "
    "?version=2&token=..&clientId=..&authType=2"
)
#: The most a last traded quantity can be on the wire (uint16).
MAX_LAST_QUANTITY = 2**16 - 1

_HEAD = ("code", "length", "segment", "security_id")
_TRADE = ("ltp", "last_quantity", "ltt", "average", "volume", "total_sell", "total_buy")
_LEVEL = ("bid_quantity", "ask_quantity", "bid_orders", "ask_orders", "bid_price", "ask_price")
_LAYOUTS = {
    TICKER_PACKET_CODE: (TICKER_PACKET, (*_HEAD, "ltp", "ltt")),
    PREV_CLOSE_CODE: (PREV_CLOSE_PACKET, (*_HEAD, "close", "open_interest")),
    QUOTE_PACKET_CODE: (QUOTE_PACKET, (*_HEAD, *_TRADE, "open", "day_close", "high", "low")),
    OI_CODE: (OI_PACKET, (*_HEAD, "open_interest")),
    FULL_PACKET_CODE: (
        FULL_PACKET,
        (
            *_HEAD,
            *_TRADE,
            "open_interest",
            "oi_day_high",
            "oi_day_low",
            "open",
            "day_close",
            "high",
            "low",
            ("depth", _LEVEL, DEPTH_LEVELS),
        ),
    ),
}


def _frame(layout: struct.Struct, names: tuple) -> np.dtype:
    """A packet's record type behind its WebSocket frame header: one record, one message."""
    head = header(FIN_BINARY, layout.size)
    return record(layout, names, prefix=[("frame", f"{len(head)}u1")])


FRAMES = {code: _frame(layout, names) for code, (layout, names) in _LAYOUTS.items()}
FRAME_HEADS = {
    code: np.frombuffer(header(FIN_BINARY, layout.size), np.uint8)
    for code, (layout, _) in _LAYOUTS.items()
}
SIZES = {code: layout.size for code, (layout, _) in _LAYOUTS.items()}
PRICES = ("ltp", "average", "open", "high", "low")
QUANTITIES = ("volume", "total_sell", "total_buy", "open_interest")
MODE_CODES = {LTP: TICKER_PACKET_CODE, QUOTE: QUOTE_PACKET_CODE, DEPTH: FULL_PACKET_CODE}


def exchange_of(key: Hashable) -> str:
    """The exchange of a ``(segment, security ID)`` key, for one the master does not hold."""
    return {
        "IDX_I": "NSE_INDEX",
        "NSE_EQ": "NSE",
        "NSE_FNO": "NFO",
        "NSE_CURRENCY": "CDS",
        "BSE_EQ": "BSE",
        "MCX_COMM": "MCX",
        "BSE_FNO": "BFO",
    }.get(SEGMENT_NAMES.get(key[0], ""), "")


def refused(logins: DhanLogins, request: web.Request) -> str | None:
    """Why the upgrade is refused: only for another version than 2. Dhan accepts the upgrade
    whatever the credentials; its verdict on them is left on the request, for the connection
    to send (:data:`VERDICT`)."""
    if request.query.get("version") != "2":
        return VERSION_REFUSAL
    request[VERDICT] = logins.verdict(
        request.query.get("clientId", ""), request.query.get("token", "")
    )
    return None


def account(credentials: SimulatorCredentials, request: web.Request) -> str:
    """Connections are counted per client ID."""
    return request.query.get("clientId", "")


class DhanFeedConnection(SimulatedConnection):
    """One simulated Live Market Feed connection; Dhan holds each instrument per mode."""

    MODES = (LTP, QUOTE, DEPTH)
    LABEL = np.dtype([("segment", np.uint8), ("security_id", np.uint32)])

    def __init__(self, *args, **options) -> None:
        super().__init__(*args, **options)
        #: Rows subscribed since the last snapshots, each owed a previous-close packet.
        self._owed_closes: list[int] = []

    async def run(self) -> None:
        """Serve the connection, or refuse its credentials first."""
        verdict = self.request.get(VERDICT)
        if verdict is not None:
            await self.disconnect(verdict)
            return
        await super().run()

    async def disconnect(self, reason: int) -> None:
        """Send Dhan's disconnect packet for ``reason``, then close."""
        self.log_refusal(str(reason), "disconnected")
        await self.websocket.send_bytes(disconnect_packet(reason))
        await self.websocket.close()

    async def displace(self) -> None:
        await self.disconnect(TOO_MANY_CONNECTIONS)

    async def expire(self) -> None:
        await self.disconnect(TOKEN_EXPIRED)

    async def answer(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            if not (len(message) == 83 and message[0] == DISCONNECT_REQUEST):
                self.log_refusal("binary", f"a binary frame of {len(message)} bytes, ignored")
            return
        try:
            request = parse_request(message)
        except ProtocolError as exc:
            self.log_refusal("request", f"{exc}; ignored")
            return
        if request.code == DISCONNECT_REQUEST:
            await self.websocket.close()
        elif request.code in FEEDPOOL_MODES:
            await self._subscribe(request.instruments, FEEDPOOL_MODES[request.code])
        else:
            for key in request.instruments:
                self.drop(key, UNSUBSCRIBE[request.code])

    async def _subscribe(self, keys: tuple[tuple[int, int], ...], mode: int) -> None:
        new = {key for key in keys if key not in self.held}
        if len(self.held) + len(new) > self.max_tokens:
            await self.disconnect(TOO_MANY_INSTRUMENTS)
            return
        for key in keys:
            self.hold(key, mode)

    def hold(self, key: Hashable, mode: int) -> None:
        if mode not in self.modes(key):
            super().hold(key, mode)
            self._owed_closes.append(self.held[key])

    def label(self, key: Hashable) -> tuple:
        return key

    def snapshots(self, timestamp_ms: int) -> list[np.ndarray]:
        """Each new subscription's previous close, then the snapshots."""
        owed, self._owed_closes = self._owed_closes, []
        rows = [row for row in dict.fromkeys(owed) if self._modes[row]]
        closes = [self._packets(PREV_CLOSE_CODE, np.array(rows))] if rows else []
        return closes + super().snapshots(timestamp_ms)

    def encode(self, mode: int, rows: np.ndarray, timestamp_ms: int) -> list[np.ndarray]:
        packets = [self._packets(MODE_CODES[mode], rows)]
        if mode == QUOTE:
            derivative = self.market.figures[rows, COLUMN["derivative"]] != 0
            if derivative.any():
                packets.append(self._packets(OI_CODE, rows[derivative]))
        return packets

    def _packets(self, code: int, rows: np.ndarray) -> np.ndarray:
        """The ``code`` packets of market ``rows`` as they stand, each behind its frame header."""
        kind = FRAMES[code]
        day = self.market.figures[rows]
        labels = self._labels[rows]
        packets = np.empty(len(rows), kind)
        packets["frame"] = FRAME_HEADS[code]
        packets["code"] = code
        packets["length"] = SIZES[code]
        packets["segment"] = labels["segment"]
        packets["security_id"] = labels["security_id"]
        currency = np.isin(labels["segment"], list(CURRENCY_SEGMENTS))
        divisor = np.where(currency, 1e7, 100.0)
        names = kind.names
        for name in PRICES:
            if name in names:
                packets[name] = day[:, COLUMN[name]] / divisor
        for name in QUANTITIES:
            if name in names:
                packets[name] = day[:, COLUMN[name]]
        if "close" in names:  # the previous close packet's
            packets["close"] = day[:, COLUMN["close"]] / divisor
        if "last_quantity" in names:
            packets["last_quantity"] = np.minimum(
                day[:, COLUMN["last_quantity"]], MAX_LAST_QUANTITY
            )
            packets["ltt"] = dhan_seconds(day[:, COLUMN["last_trade_time"]])
            packets["day_close"] = 0.0
        elif "ltt" in names:
            packets["ltt"] = dhan_seconds(day[:, COLUMN["last_trade_time"]])
        if "depth" in names:
            packets["oi_day_high"] = packets["oi_day_low"] = day[:, COLUMN["open_interest"]]
            quantities, prices, orders = self.market.book(rows)
            depth = packets["depth"]
            depth["bid_quantity"] = quantities[:, :DEPTH_LEVELS]
            depth["ask_quantity"] = quantities[:, DEPTH_LEVELS:]
            depth["bid_orders"] = orders[:, :DEPTH_LEVELS]
            depth["ask_orders"] = orders[:, DEPTH_LEVELS:]
            depth["bid_price"] = prices[:, :DEPTH_LEVELS] / divisor[:, None]
            depth["ask_price"] = prices[:, DEPTH_LEVELS:] / divisor[:, None]
        return packets

    def write(self, packets: list[np.ndarray]) -> None:
        """One binary message per packet, as Dhan sends them; the wake-up's in one write."""
        write_frames(self.request, self.websocket, b"".join(p.tobytes() for p in packets))
