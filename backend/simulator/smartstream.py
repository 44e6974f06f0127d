"""The simulator's SmartStream 2.0 side: Angel One's handshake, requests and tick packets.

- The handshake is checked the way the broker checks it: the four credential headers (HTTP 401
  with ``x-error-message`` naming the bad one), at ``/smart-stream``. The JWT and the feed token
  are good while their session is (:class:`~backend.simulator.logins.Logins`).
- Requests are answered in order: subscribe and unsubscribe, the text ``ping`` (``pong``), E1001
  for a malformed request and E1002 for a subscription past the token limit, which refuses the
  whole request while the tokens already held keep streaming.
- Ticks go out one packet per binary frame, as the broker sends them.
"""

from __future__ import annotations

import json
from collections.abc import Hashable

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
from backend.instruments import Instrument
from backend.simulator.batch import send_batch
from backend.simulator.credentials import SimulatorCredentials, same_token
from backend.simulator.logins import Logins
from backend.simulator.session import Holding, Session

PATH = "/smart-stream"
_EXCHANGES = {number: name for name, number in reversed(EXCHANGE_TYPES.items())} | {7: "NCX"}


def key(instrument: Instrument) -> tuple[int, str]:
    return EXCHANGE_TYPES[instrument.exchange], instrument.token


def exchange_of(key: Hashable) -> str:
    """The exchange of an ``(exchangeType, token)`` key, for a token the master does not hold."""
    return _EXCHANGES.get(key[0], "")


def refused(logins: Logins, request: web.Request) -> str | None:
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


class SmartStreamSession(Session):
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

    def packet(self, holding: Holding, mode: int, timestamp_ms: int) -> bytes:
        walk = holding.walk
        exchange_type, token = holding.key
        token = token.encode("ascii")
        if mode == LTP:
            return LTP_PACKET.pack(LTP, exchange_type, token, walk.sequence, timestamp_ms, walk.ltp)
        quote = (
            exchange_type,
            token,
            walk.sequence,
            timestamp_ms,
            walk.ltp,
            *walk.quote(),
        )
        if mode == QUOTE:
            return QUOTE_PACKET.pack(QUOTE, *quote)
        return SNAP_QUOTE_PACKET.pack(
            SNAP_QUOTE,
            *quote,
            walk.last_trade_time,
            walk.open_interest,
            0,  # open-interest change: official clients read it inconsistently
            *walk.book(),
            walk.upper_circuit,
            walk.lower_circuit,
            walk.week52_high,
            walk.week52_low,
        )

    async def send_packets(self, packets: list[bytes]) -> None:
        """One binary frame per packet, as the broker sends them; the batch in one write."""
        await send_batch(self.request, self.websocket, packets)
