"""The tick router: hands every tick the adapters publish to the clients holding it.

The router is the bus publisher's in-process
:attr:`~backend.bus.publisher.ZmqPublisher.tick_listener`, so ticks reach it without a socket. For
each tick it looks the topic up in the :class:`~backend.proxy.index.SubscriptionIndex`, builds each
served mode's frame once, and pushes that frame to every holder's outbox. Pushing never waits, so a
client that does not read cannot slow the adapters or any other client.
"""

from __future__ import annotations

import asyncio

import orjson

from backend.proxy.frames import trimmed
from backend.proxy.index import SubscriptionIndex


class TickRouter:
    """Delivers ticks to the clients of ``index``; call it with ``(topic, payload)``."""

    def __init__(self, index: SubscriptionIndex) -> None:
        self.index = index
        self._time = asyncio.get_running_loop().time
        #: Ticks routed, and those whose payload could not be parsed.
        self.received = 0
        self.malformed = 0

    def __call__(self, topic: bytes, payload: bytes) -> None:
        self.received += 1
        route = self.index.routes.get(topic)
        if route is None:
            return
        now = self._time()
        tick = None
        for target in route.targets:
            parts = target.parts
            if target.mode == route.mode:
                frame = parts.prefix + payload + parts.suffix
            else:
                if tick is None:
                    try:
                        tick = orjson.loads(payload)
                    except orjson.JSONDecodeError:
                        self.malformed += 1
                        return
                frame = parts.prefix + trimmed(tick, target.mode) + parts.suffix
            key = target.key
            for holder in target.holders:
                holder.push(key, frame, now)
