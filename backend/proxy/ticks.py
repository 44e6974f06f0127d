"""The tick reader: a ZMQ SUB on the bus that hands every tick to the clients holding it.

It subscribes to the tick topics only (one prefix per exchange, so no ``SYS.`` message arrives),
and reads in batches: one wait for the socket to be readable, then up to :data:`BATCH` messages
without waiting, then a turn of the event loop for the clients' writers. For each tick it looks
the topic up in the :class:`~backend.proxy.index.SubscriptionIndex`, builds each served mode's
frame once, and pushes that frame to every holder's outbox. Pushing never waits, so a client
that does not read cannot slow the reader or any other client.
"""

from __future__ import annotations

import asyncio
import json

import zmq
import zmq.asyncio

from backend.feed import EXCHANGES
from backend.proxy.frames import trimmed
from backend.proxy.index import Route, SubscriptionIndex

BATCH = 500
#: Messages the SUB socket may queue; the publisher queues as many more per subscriber.
RECEIVE_HIGH_WATER_MARK = 100_000
TICK_PREFIXES = tuple(f"{exchange}_" for exchange in EXCHANGES)


class TickReader:
    """Reads ticks from the bus at ``endpoint`` into the clients of ``index``."""

    def __init__(self, endpoint: str, index: SubscriptionIndex) -> None:
        self.index = index
        #: Ticks read from the bus, and those that could not be parsed.
        self.received = 0
        self.malformed = 0
        self._socket = zmq.asyncio.Context.instance().socket(zmq.SUB)
        self._socket.setsockopt(zmq.RCVHWM, RECEIVE_HIGH_WATER_MARK)
        self._socket.setsockopt(zmq.LINGER, 0)
        for prefix in TICK_PREFIXES:
            self._socket.setsockopt_string(zmq.SUBSCRIBE, prefix)
        self._socket.connect(endpoint)
        # The same socket, read without futures while a batch is drained.
        self._shadow = zmq.Socket.shadow(self._socket.underlying)

    async def run(self) -> None:
        """Read ticks until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            await self._socket.poll(flags=zmq.POLLIN)
            self._read_batch(loop.time())
            await asyncio.sleep(0)

    def _read_batch(self, now: float) -> None:
        recv = self._shadow.recv_multipart
        routes = self.index.routes
        for _ in range(BATCH):
            try:
                topic, payload = recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.received += 1
            route = routes.get(topic)
            if route is not None:
                self._deliver(route, payload, now)

    def _deliver(self, route: Route, payload: bytes, now: float) -> None:
        tick = None
        for target in route.targets:
            parts = target.parts
            if target.mode == route.mode:
                frame = parts.prefix + payload + parts.suffix
            else:
                if tick is None:
                    try:
                        tick = json.loads(payload)
                    except ValueError:
                        self.malformed += 1
                        return
                frame = parts.prefix + trimmed(tick, target.mode) + parts.suffix
            key = target.key
            for holder in target.holders:
                holder.push(key, frame, now)

    def close(self) -> None:
        self._socket.close()
