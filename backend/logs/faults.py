"""Repeated faults logged once an interval, with a count of the rest.

A broken peer can send thousands of bad messages a second, and a warning for each rolls the log
files over in seconds. A :class:`FaultLog` logs the first fault of a kind at once and counts the
later ones; when the interval ends it logs one line saying how many more there were, and keeps
counting for another interval. An interval without a fault of that kind ends its count: the next
one is logged at once again. A flood of one kind thus costs a line an interval, whatever its rate,
and no count is lost when the faults stop.

The faults are reported on the event loop's thread: the end of an interval is a timer on the
running loop.
"""

from __future__ import annotations

import asyncio
import logging

#: Seconds over which faults of one kind after the first are counted, not logged.
INTERVAL_SECONDS = 10.0


class FaultLog:
    """Faults by kind to ``log`` (a logger, or a :class:`logging.LoggerAdapter` with its extra),
    each line beginning with ``prefix``."""

    def __init__(
        self,
        log: logging.Logger | logging.LoggerAdapter,
        prefix: str = "",
        *,
        interval: float = INTERVAL_SECONDS,
        level: int = logging.WARNING,
    ) -> None:
        self._log = log
        self._prefix = prefix
        self._interval = interval
        self._level = level
        #: Faults of each kind counted and not logged in the current interval.
        self._counts: dict[str, int] = {}

    def report(self, kind: str, detail: str = "", *args: object) -> None:
        """One fault of ``kind`` (a short phrase of the code's own, never the peer's text).

        The first of its interval is logged as ``prefix kind: detail % args``; the others are
        counted.
        """
        counted = self._counts.get(kind)
        if counted is not None:
            self._counts[kind] = counted + 1
            return
        self._counts[kind] = 0
        line = f"%s%s: {detail}" if detail else "%s%s"
        self._log.log(self._level, line, self._prefix, kind, *args)
        asyncio.get_running_loop().call_later(self._interval, self._summarise, kind)

    def _summarise(self, kind: str) -> None:
        """The interval of ``kind`` ended: log how many more there were, and count on if any."""
        counted = self._counts.pop(kind)
        if counted:
            self._log.log(
                self._level,
                "%s%s: %d more like it in the last %g s",
                self._prefix,
                kind,
                counted,
                self._interval,
            )
            self._counts[kind] = 0
            asyncio.get_running_loop().call_later(self._interval, self._summarise, kind)
