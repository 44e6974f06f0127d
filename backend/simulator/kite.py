"""The simulator's KiteTicker side: Zerodha's handshake, requests and tick messages.

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
from collections.abc import Hashable

from aiohttp import web

from backend.brokers.zerodha.protocol import (
    FEEDPOOL_MODES,
    HEARTBEAT,
    INDICES,
    SEGMENTS,
    SET_MODE,
    SUBSCRIBE,
    ProtocolError,
    error_message,
    message,
    pack_full,
    pack_index_full,
    pack_index_quote,
    pack_ltp,
    pack_quote,
    parse_request,
    segment_of,
)
from backend.feed import LTP, QUOTE
from backend.instruments import Instrument
from backend.simulator.credentials import SimulatorCredentials, same_token
from backend.simulator.logins import Logins
from backend.simulator.session import Holding, Session

PATH = "/"
INVALID_SESSION = "Incorrect `api_key` or `access_token`."
MESSAGE_PACKETS = 500
HEARTBEAT_SECONDS = 1.0
_EXCHANGES = {
    SEGMENTS["nse"]: "NSE",
    SEGMENTS["nfo"]: "NFO",
    SEGMENTS["cds"]: "CDS",
    SEGMENTS["bse"]: "BSE",
    SEGMENTS["bfo"]: "BFO",
    SEGMENTS["mcx"]: "MCX",
    INDICES: "NSE_INDEX",
}


def key(instrument: Instrument) -> int:
    return int(instrument.token)


def exchange_of(key: Hashable) -> str:
    """The exchange of a token the master does not hold, from its segment."""
    return _EXCHANGES.get(segment_of(key), "")


def refused(logins: Logins, request: web.Request) -> str | None:
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


class KiteSession(Session):
    """One simulated KiteTicker connection. Kite holds each token in one mode."""

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
                holding = self.held.get(token)
                if holding is not None and holding.modes != [mode]:
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

    def packet(self, holding: Holding, mode: int, timestamp_ms: int) -> bytes:
        walk = holding.walk
        token = holding.key
        if mode == LTP:
            return pack_ltp(token, walk.ltp)
        if segment_of(token) == INDICES:
            prices = {"high": walk.high, "low": walk.low, "open": walk.open, "close": walk.close}
            change = walk.ltp - walk.close
            if mode == QUOTE:
                return pack_index_quote(token, walk.ltp, change=change, **prices)
            seconds = timestamp_ms // 1000
            return pack_index_full(
                token, walk.ltp, change=change, exchange_timestamp=seconds, **prices
            )
        if mode == QUOTE:
            return pack_quote(token, walk.ltp, walk.quote())
        book = walk.book()
        oi = walk.open_interest
        return pack_full(
            token,
            walk.ltp,
            walk.quote(),
            last_trade_time=walk.last_trade_time,
            oi=oi,
            oi_day_high=oi,
            oi_day_low=oi,
            exchange_timestamp=timestamp_ms // 1000,
            depth=[value for at in range(0, len(book), 4) for value in book[at + 1 : at + 4]],
        )

    async def send_packets(self, packets: list[bytes]) -> None:
        send = self.websocket.send_bytes
        for start in range(0, len(packets), MESSAGE_PACKETS):
            await send(message(packets[start : start + MESSAGE_PACKETS]))
