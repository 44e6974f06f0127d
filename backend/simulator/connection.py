"""One simulated broker connection: its subscriptions, its requests and its packets.

A :class:`SimulatedConnection` reads requests over one WebSocket (an aiohttp server's) and
answers them strictly in arrival order, through the broker dialect's
:meth:`SimulatedConnection.answer`. What it holds is a bit per mode per market row; the market's
:class:`~backend.simulator.clock.MarketClock` trades the rows and asks each connection for its
packets: the snapshot of each newly held (token, mode), then its share of each slot's trades
(:meth:`SimulatedConnection.ticks`). The dialect packs them (:meth:`SimulatedConnection.encode`),
a batch of rows of one mode at a time, and writes them (:meth:`SimulatedConnection.write`).

A muted connection (:meth:`SimulatedConnection.mute`) goes on answering requests, and aiohttp
answers its WebSocket pings, but it sends no more ticks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web

from backend.simulator.batch import backlogged
from backend.simulator.clock import MarketClock, now_ms

log = logging.getLogger("feedpool.simulator")


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """A snapshot of one open connection, for tests and the command line."""

    id: int
    client_code: str
    token_count: int
    tokens: frozenset[Hashable]
    #: Its client is not reading: it gets no ticks until it does.
    backlogged: bool


class SimulatedConnection:
    """The state and requests of one accepted connection; :meth:`run` serves it until it closes.

    ``websocket`` is the prepared connection and ``request`` its handshake; ``account`` is who
    connected (a client code, an API key's owner); ``clock`` trades the market; ``max_tokens``
    caps the distinct tokens held, whatever their modes. A broker's dialect subclasses it with
    :meth:`answer`, :meth:`encode` and :meth:`write`, its modes (:attr:`MODES`) and what it
    packs of each token (:attr:`LABEL`, from :meth:`label`).
    """

    #: The broker's modes, in the order a batch's packets go out.
    MODES: tuple[int, ...] = ()
    #: The record type of what a packet carries of its token besides the market's figures.
    LABEL = np.dtype([])

    def __init__(
        self,
        connection_id: int,
        account: str,
        websocket: web.WebSocketResponse,
        request: web.Request,
        clock: MarketClock,
        *,
        max_tokens: int,
    ) -> None:
        self.id = connection_id
        self.account = account
        self.websocket = websocket
        self.request = request
        #: The connection's socket, to drop it.
        self.transport = request.transport
        self.muted = False
        self.market = clock.market
        self._clock = clock
        self.max_tokens = max_tokens
        #: The market row of each token held.
        self.held: dict[Hashable, int] = {}
        # Per market row: bit 1 << mode for each mode held, and the token's label.
        self._modes = np.zeros(0, np.uint8)
        self._labels = np.zeros(0, self.LABEL)
        self._tokens_in = dict.fromkeys(self.MODES, 0)
        self._snapshots: list[tuple[int, int]] = []
        self.finished = asyncio.Event()

    @property
    def info(self) -> ConnectionInfo:
        return ConnectionInfo(
            self.id, self.account, len(self.held), frozenset(self.held), self.backlogged()
        )

    def holds(self, key: Hashable) -> bool:
        return key in self.held

    def modes(self, key: Hashable) -> list[int]:
        """The modes ``key`` is held in."""
        row = self.held.get(key)
        bits = 0 if row is None else int(self._modes[row])
        return [mode for mode in self.MODES if bits & 1 << mode]

    async def run(self) -> None:
        """Read requests until the connection closes; the clock sends its packets meanwhile."""
        self._clock.subscribers.append(self)
        tasks = [
            asyncio.create_task(self._read_requests()),
            *(asyncio.create_task(task) for task in self.background()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._clock.subscribers.remove(self)
            for row in self.held.values():
                self._clock.release(row)
            self.held.clear()
            for task in tasks:
                task.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                raise outcome

    def background(self) -> list[Any]:
        """More coroutines to run beside the reader (a heartbeat, say)."""
        return []

    # What a dialect provides

    async def answer(self, message: str | bytes) -> None:
        """Answer one request."""
        raise NotImplementedError

    def label(self, key: Hashable) -> tuple:
        """What packets carry of ``key`` (a :attr:`LABEL` record)."""
        raise NotImplementedError

    def encode(self, mode: int, rows: np.ndarray, timestamp_ms: int) -> list[np.ndarray]:
        """The ``mode`` packets of market ``rows`` as they stand, as record arrays."""
        raise NotImplementedError

    def write(self, packets: list[np.ndarray]) -> None:
        """Send the packets of one wake-up."""
        raise NotImplementedError

    async def expire(self) -> None:
        """Close for the session's end (code 1008), as the broker does when a session ends."""
        await self.websocket.close(code=WSCloseCode.POLICY_VIOLATION, message=b"session expired")

    async def displace(self) -> None:
        """Close for a newer connection of the account, as a broker that closes the oldest past
        its limit does (:attr:`~backend.simulator.dialect.Dialect.closes_oldest`)."""
        raise NotImplementedError

    def log_refusal(self, code: str, reason: str) -> None:
        log.info("connection %d: refused request (%s): %s", self.id, code, reason)

    def mute(self) -> None:
        """Send no more ticks, snapshots included; requests are still answered."""
        self.muted = True

    # Holding and letting go

    def hold(self, key: Hashable, mode: int) -> None:
        """Hold ``key`` in ``mode`` too, with a snapshot of it in that mode."""
        row = self.held.get(key)
        if row is None:
            row = self.held[key] = self.market.row(key, now_ms())
            self._fit()
            self._labels[row] = self.label(key)
            self._clock.hold(row)
        bit = 1 << mode
        if not self._modes[row] & bit:
            self._modes[row] |= bit
            self._tokens_in[mode] += 1
            self._snapshots.append((row, mode))
            self._clock.wake()

    def drop(self, key: Hashable, mode: int | None = None) -> None:
        """Stop holding ``key`` in ``mode`` (every mode: ``None``); with none left it is freed."""
        row = self.held.get(key)
        if row is None:
            return
        for dropped in self.MODES if mode is None else (mode,):
            bit = 1 << dropped
            if self._modes[row] & bit:
                self._modes[row] ^= bit
                self._tokens_in[dropped] -= 1
        if not self._modes[row]:
            del self.held[key]
            self._clock.release(row)

    def _fit(self) -> None:
        """Grow the per-row arrays to the market's."""
        grow = len(self.market.figures) - len(self._modes)
        if grow > 0:
            self._modes = np.append(self._modes, np.zeros(grow, np.uint8))
            self._labels = np.append(self._labels, np.zeros(grow, self.LABEL))

    # What the clock asks for

    def backlogged(self) -> bool:
        return backlogged(self.request)

    def snapshots(self, timestamp_ms: int) -> list[np.ndarray]:
        """The snapshot of each (token, mode) held since the last call and still held."""
        if not self._snapshots:
            return []
        waiting, self._snapshots = self._snapshots, []
        packets = []
        for mode in self.MODES:
            rows = [row for row, held in waiting if held == mode and self._modes[row] & 1 << mode]
            if rows:
                packets += self.encode(mode, np.array(rows), timestamp_ms)
        return packets

    def ticks(self, rows: np.ndarray, timestamp_ms: int) -> list[np.ndarray]:
        """The packets of a trade of each of ``rows`` (distinct market rows), for those held."""
        self._fit()
        held = self._modes[rows]
        packets = []
        for mode, tokens in self._tokens_in.items():
            if tokens:
                ours = rows[(held & 1 << mode) != 0]
                if ours.size:
                    packets += self.encode(mode, ours, timestamp_ms)
        return packets

    async def _read_requests(self) -> None:
        try:
            async for message in self.websocket:
                if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    return  # an error: aiohttp closes the connection
                await self.answer(message.data)
        except ConnectionResetError:  # answering a connection that is closing
            pass
