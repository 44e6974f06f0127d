"""Feed lag: from a tick's exchange timestamp to the app's receipt of it.

:meth:`FeedLag.observe` is told each tick the watchlist applies, with when it was received, so it
only keeps the worst lag seen; :meth:`FeedLag.take` reads and resets it once a second.

Some brokers stamp whole seconds (Kite's full packets): such a stamp says only that the exchange
saw the tick at most a second after it, so a lag read from it could be a second too long. Its lag
is counted from the end of the stamp's second instead: the least lag the stamp allows, which never
shows a second that was not there. :attr:`FeedLag.whole_seconds` says whether the ticks of the last
:meth:`FeedLag.take` were all so stamped, for the chart to say what it measured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NOTHING = float("-inf")
SECOND_MS = 1000


class FeedLag:
    """The worst lag, in milliseconds, of the ticks observed since the last :meth:`take`."""

    def __init__(self) -> None:
        self._worst = NOTHING
        self._stamps_in_seconds = 0
        self._stamps_in_ms = 0
        #: The ticks of the last :meth:`take` were all stamped in whole seconds.
        self.whole_seconds = False

    def observe(self, data: Mapping[str, Any], received: float) -> None:
        """Note a ``market_data`` message's ``data`` (its ``timestamp`` is epoch milliseconds),
        received at ``received`` (epoch seconds)."""
        stamp = data.get("timestamp")
        if stamp is None:
            return
        if stamp % SECOND_MS:
            self._stamps_in_ms += 1
        else:
            self._stamps_in_seconds += 1
            stamp += SECOND_MS  # the latest the exchange can have seen it
        self._worst = max(self._worst, received * 1000.0 - stamp)

    def take(self) -> float | None:
        """The worst lag since the last call; ``None`` if no tick came."""
        worst, self._worst = self._worst, NOTHING
        if worst == NOTHING:
            return None
        self.whole_seconds = self._stamps_in_seconds > 0 and self._stamps_in_ms == 0
        self._stamps_in_seconds = self._stamps_in_ms = 0
        return max(worst, 0.0)
