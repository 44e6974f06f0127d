"""The optional per-client rate limit: one update per subscription per interval, the newest.

With ``WS_MIN_INTERVAL_MS`` above 0, a client gets at most one frame per subscription (symbol,
exchange and mode) per interval. A tick that arrives when its subscription is due passes at
once. One that arrives sooner is held back, replacing any held frame of the same subscription
(counted in :attr:`Throttle.superseded`), and passes when the interval is up. So the latest price
always reaches the client, at most one interval late, which a throttle that simply drops early
ticks cannot promise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable

Forward = Callable[[Hashable, bytes, float], None]


class Throttle:
    """Passes frames to ``forward`` at most once per ``interval`` seconds per subscription."""

    def __init__(self, interval: float, forward: Forward) -> None:
        self.interval = interval
        #: Frames replaced by a newer frame of the same subscription while held back.
        self.superseded = 0
        self._forward = forward
        self._loop = asyncio.get_running_loop()
        self._due: dict[Hashable, float] = {}
        self._held: dict[Hashable, bytes] = {}
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}

    def offer(self, key: Hashable, frame: bytes, now: float) -> None:
        """Pass ``frame`` now if ``key`` is due at loop time ``now``, else hold it back."""
        due = self._due.get(key, 0.0)
        if now >= due and key not in self._held:
            self._due[key] = now + self.interval
            self._forward(key, frame, now)
            return
        if key in self._held:
            self.superseded += 1
        else:
            self._timers[key] = self._loop.call_at(due, self._release, key)
        self._held[key] = frame

    def _release(self, key: Hashable) -> None:
        del self._timers[key]
        frame = self._held.pop(key)
        now = self._loop.time()
        self._due[key] = now + self.interval
        self._forward(key, frame, now)

    def close(self) -> None:
        """Drop the held frames and their timers."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._held.clear()
