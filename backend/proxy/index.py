"""The subscription index: which clients take the ticks of each bus topic, in O(1).

Clients hold ``(symbol, exchange, mode)`` subscriptions. The adapters publish a symbol's ticks on
one topic, at the highest mode anyone holds (``NSE_SBIN_QUOTE``), and a tick of mode m serves
every subscription of that symbol at a mode <= m. The index therefore keeps, for every topic that
someone can use, a :class:`Route`: the tick mode and the :class:`Target` of each served mode with
its holders and its frame parts. The tick router looks a topic up as the raw bytes it is handed,
and a route is recomputed only when a mode of its symbol gains its first holder or loses its last.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from backend.feed import MODES, tick_topic
from backend.proxy.frames import FrameParts

Key = tuple[str, str, int]  # (symbol, exchange, mode)


class Subscriber(Protocol):
    """What the index delivers to: a client (:class:`~backend.proxy.client.Client`)."""

    def push(self, key: Key, frame: bytes, now: float) -> None:
        """Take one frame for ``key``; never blocks."""


@dataclass(slots=True)
class Target:
    """The holders of one subscription, and the fixed parts of its frames."""

    key: Key
    parts: FrameParts
    holders: set[Subscriber] = field(default_factory=set)

    @property
    def mode(self) -> int:
        return self.key[2]


@dataclass(frozen=True, slots=True)
class Route:
    """Where the ticks of one topic go: every target at a mode up to ``mode``."""

    mode: int
    targets: tuple[Target, ...]


class SubscriptionIndex:
    """``(symbol, exchange, mode) -> holders``, and ``topic -> route`` for the tick router."""

    def __init__(self, broker: str) -> None:
        self.broker = broker
        #: Topic (as bytes on the wire) -> route; read by the tick router for every tick.
        self.routes: dict[bytes, Route] = {}
        self._targets: dict[Key, Target] = {}

    def __len__(self) -> int:
        """The number of subscriptions held by at least one client."""
        return len(self._targets)

    def holders(self, symbol: str, exchange: str, mode: int) -> frozenset[Subscriber]:
        target = self._targets.get((symbol, exchange, mode))
        return frozenset(target.holders) if target else frozenset()

    def add(self, holder: Subscriber, symbol: str, exchange: str, mode: int) -> None:
        key = (symbol, exchange, mode)
        target = self._targets.get(key)
        if target is None:
            target = Target(key, FrameParts.of(symbol, exchange, mode, self.broker))
            self._targets[key] = target
            self._reroute(symbol, exchange)
        target.holders.add(holder)

    def discard(self, holder: Subscriber, symbol: str, exchange: str, mode: int) -> None:
        target = self._targets.get((symbol, exchange, mode))
        if target is None:
            return
        target.holders.discard(holder)
        if not target.holders:
            del self._targets[target.key]
            self._reroute(symbol, exchange)

    def _reroute(self, symbol: str, exchange: str) -> None:
        held = [self._targets.get((symbol, exchange, mode)) for mode in MODES]
        for tick_mode in MODES:
            topic = tick_topic(exchange, symbol, tick_mode).encode()
            targets = tuple(t for t in held if t is not None and t.mode <= tick_mode)
            if targets:
                self.routes[topic] = Route(tick_mode, targets)
            else:
                self.routes.pop(topic, None)
