"""The event loop the backend and the simulator run on: uvloop where it exists.

uvloop (libuv) runs the same asyncio programs with a loop, transports and timers written in C;
the feed's per-tick work (socket reads, writes, wake-ups) costs less on it. Windows has no
uvloop, and gets asyncio's own loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

try:
    import uvloop
except ImportError:  # Windows
    uvloop = None


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """A new event loop: uvloop's if installed, else asyncio's default (``None``)."""
    return uvloop.new_event_loop if uvloop is not None else None


def run(main: Coroutine[Any, Any, Any]) -> Any:
    """Run ``main`` to completion on a new loop of :func:`loop_factory`'s kind."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
