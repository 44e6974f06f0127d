"""A client of one KiteTicker connection: subscribes instruments, publishes their ticks.

Kite acknowledges nothing and numbers no request, so a refusal cannot be matched to the
instruments it concerns. The adapter therefore never asks a connection for more than Kite's
documented limit: past :data:`MAX_INSTRUMENTS` it refuses the rest itself, as the broker would,
and the pool places them on another connection. An error the broker sends anyway is logged.

The API key and access token travel only in the upgrade request's query string; the URL is
shown without it in every log line and error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from backend.brokers.adapter import BrokerAdapter, Refusal
from backend.brokers.zerodha import protocol
from backend.feed import QUOTE
from backend.instruments.master import Instrument
from backend.security.secret import Secret
from backend.wire.broker_socket import BrokerSocket

#: Instruments per connection, as Kite documents it.
MAX_INSTRUMENTS = 3000
#: Tokens per request.
REQUEST_TOKENS = 500


@dataclass(frozen=True)
class KiteCredentials:
    """What Kite checks on the upgrade request."""

    api_key: Secret
    access_token: Secret
    #: Whose account this is, for statistics only.
    user_id: str = ""

    def url(self, root: str) -> str:
        query = urlencode(
            {"api_key": self.api_key.reveal(), "access_token": self.access_token.reveal()}
        )
        return f"{root}?{query}"


class KiteAdapter(BrokerAdapter):
    """One pooled KiteTicker connection; Kite holds each instrument in one mode."""

    broker = "zerodha"
    session_status = 403

    def __init__(self, index: int, url: str, credentials: KiteCredentials, **options) -> None:
        super().__init__(index, url, credentials, **options)

    @staticmethod
    def key(instrument: Instrument) -> int:
        return int(instrument.token)

    @staticmethod
    def handshake(root: str, credentials: KiteCredentials) -> tuple[str, str, dict[str, str]]:
        return credentials.url(root), root, {}

    async def _subscribe(
        self,
        ws: BrokerSocket,
        instruments: Sequence[Instrument],
        mode: int,
        previous: dict[Hashable, int],
    ) -> list[Refusal]:
        within, refused = self._within_limit(instruments, previous, MAX_INSTRUMENTS, "Kite")
        added = [self.key(i) for i in within]
        moved = [self.key(i) for i in instruments if self.key(i) in previous]
        await self._send(ws, protocol.subscribe_request, added)
        # A new subscription is in quote mode: only other modes, and moves, need a request.
        changed = moved + (added if mode != QUOTE else [])
        kite_mode = protocol.KITE_MODES[mode]
        await self._send(ws, lambda tokens: protocol.mode_request(kite_mode, tokens), changed)
        return refused

    async def _unsubscribe(self, ws: BrokerSocket, by_mode: dict[int, list[Instrument]]) -> None:
        tokens = [self.key(i) for instruments in by_mode.values() for i in instruments]
        await self._send(ws, protocol.unsubscribe_request, tokens)

    @staticmethod
    async def _send(ws: BrokerSocket, request, tokens: list[int]) -> None:
        for start in range(0, len(tokens), REQUEST_TOKENS):
            await ws.send(request(tokens[start : start + REQUEST_TOKENS]))

    def _on_message(self, message: str | bytes) -> None:
        if isinstance(message, str):
            self._on_text(message)
            return
        try:
            packets = protocol.split(message)
        except protocol.ProtocolError as exc:
            self.ticks_dropped += 1
            self.faults.report("ignored a malformed message", "%s", exc)
            return
        received_ms = time.time_ns() // 1_000_000
        routes = self._routes
        for packet in packets:
            try:
                token, mode = protocol.token_and_mode(packet)
            except protocol.ProtocolError as exc:
                self.ticks_dropped += 1
                self.faults.report("ignored a malformed tick", "%s", exc)
                continue
            route = routes.get((token, mode))
            if route is not None:
                self._offer(route, (packet, received_ms))

    def _normalise(self, raw: tuple[bytes, int], symbol: str, exchange: str) -> dict[str, Any]:
        packet, received_ms = raw
        return protocol.normalise(packet, symbol, exchange, received_ms)

    def _on_text(self, text: str) -> None:
        try:
            kind, data = protocol.parse_text(text)
        except protocol.ProtocolError:
            self.faults.report("unexpected text from the broker", "%.200s", text)
            return
        if kind == protocol.ERROR:
            self.faults.report("the broker reports an error", "%.200s", data)
        elif kind == protocol.MESSAGE:
            self.log.info("Connection %d: the broker says: %.200s", self.index, json.dumps(data))
