"""A client's outbox: the ticks waiting for its socket, bounded, conflating when full.

The tick router puts frames in and never waits; the client's writer takes them out in batches.
Up to :data:`OUTBOX_LIMIT` frames queue in arrival order and every one is sent. Past that, the
outbox conflates: it keeps only the newest frame per subscription (symbol, exchange and mode) and
counts each frame a newer one replaced in :attr:`Outbox.conflated`. The conflated frames follow
the queued ones, so a client always ends up with the newest price of every subscription.

An outbox that stays full for :data:`STALL_SECONDS` (the writer has not finished sending the
batch it took before the outbox filled) calls its ``on_stalled`` callback once: the client's
connection is then closed, since the client is not reading. :meth:`Outbox.close` drops the frames
and the callback once the client has left.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable

#: Frames queued before the outbox conflates: about 0.8 s of the NSE opening peak (12,000/s).
OUTBOX_LIMIT = 10_000
#: How long an outbox may stay full before its client is closed as not reading.
STALL_SECONDS = 10.0


def _unheard() -> None:
    """The stall callback of a closed outbox: there is nobody left to close."""


class Outbox:
    """Frames for one client; :meth:`put` never blocks, :meth:`take` waits for frames."""

    def __init__(
        self,
        on_stalled: Callable[[], None],
        *,
        limit: int = OUTBOX_LIMIT,
        stall_seconds: float = STALL_SECONDS,
    ) -> None:
        self.limit = limit
        self.stall_seconds = stall_seconds
        #: Frames replaced by a newer frame of the same subscription while the outbox was full.
        self.conflated = 0
        self._on_stalled = on_stalled
        self._queue: deque[bytes] = deque()
        self._latest: dict[Hashable, bytes] = {}
        self._full_since: float | None = None
        self._stalled = False
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._queue) + len(self._latest)

    def put(self, key: Hashable, frame: bytes, now: float) -> None:
        """Queue ``frame``, a tick of subscription ``key``, received at loop time ``now``."""
        if len(self._queue) < self.limit:
            self._queue.append(frame)
        else:
            if key in self._latest:
                self.conflated += 1
            self._latest[key] = frame
            if self._full_since is None:
                self._full_since = now
            elif now - self._full_since >= self.stall_seconds and not self._stalled:
                self._stalled = True
                self._on_stalled()
        self._ready.set()

    async def take(self) -> list[bytes]:
        """Every frame waiting, oldest first; waits until there is one."""
        while not self._queue and not self._latest:
            self._ready.clear()
            await self._ready.wait()
        frames = list(self._queue)
        self._queue.clear()
        if self._latest:
            frames += self._latest.values()
            self._latest = {}
        self._full_since = None
        return frames

    def close(self) -> None:
        """Drop the frames waiting and the stall callback, which refers back to the client."""
        self._queue.clear()
        self._latest = {}
        self._on_stalled = _unheard
