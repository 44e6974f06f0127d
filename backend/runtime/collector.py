"""The garbage collector tuned for a process that streams ticks (the backend, the simulator).

What start-up built (the instrument master above all) lives as long as the process: it is kept
out of the collector's full passes, each of which would otherwise stall the ticks for tens of
milliseconds. The ticks themselves make no reference cycles (reference counting frees them), so
the young generation is collected seldom rather than every 700 allocations, and the older ones
more seldom still.
"""

from __future__ import annotations

import gc

#: Allocations between collections of the garbage collector's youngest generation.
YOUNG_COLLECTION_ALLOCATIONS = 100_000


def settle() -> None:
    """Call once start-up is done: freeze what it built and collect seldom from then on."""
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_ALLOCATIONS, 50, 100)
