"""Feed lag: from a tick's exchange timestamp to the app's receipt of it.

:meth:`FeedLag.observe` is called for every tick the app receives, so it only keeps the worst
lag seen; :meth:`FeedLag.take` reads and resets it once a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

NOTHING = float("-inf")


class FeedLag:
    """The worst lag, in milliseconds, of the ticks received since the last :meth:`take`."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._worst = NOTHING

    def observe(self, data: Mapping[str, Any]) -> None:
        """Note a ``market_data`` message's ``data``: its ``timestamp`` is epoch milliseconds."""
        stamp = data.get("timestamp")
        if stamp is not None:
            lag = self._clock() * 1000.0 - stamp
            self._worst = max(self._worst, lag)

    def take(self) -> float | None:
        """The worst lag since the last call; ``None`` if no tick came."""
        worst, self._worst = self._worst, NOTHING
        return None if worst == NOTHING else max(worst, 0.0)
