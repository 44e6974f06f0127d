"""Feed lag: from a tick's exchange timestamp to the app's receipt of it.

:meth:`FeedLag.observe` is told each tick the watchlist applies, with when it was received, so it
only keeps the worst lag seen; :meth:`FeedLag.take` reads and resets it once a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NOTHING = float("-inf")


class FeedLag:
    """The worst lag, in milliseconds, of the ticks observed since the last :meth:`take`."""

    def __init__(self) -> None:
        self._worst = NOTHING

    def observe(self, data: Mapping[str, Any], received: float) -> None:
        """Note a ``market_data`` message's ``data`` (its ``timestamp`` is epoch milliseconds),
        received at ``received`` (epoch seconds)."""
        stamp = data.get("timestamp")
        if stamp is not None:
            self._worst = max(self._worst, received * 1000.0 - stamp)

    def take(self) -> float | None:
        """The worst lag since the last call; ``None`` if no tick came."""
        worst, self._worst = self._worst, NOTHING
        return None if worst == NOTHING else max(worst, 0.0)
