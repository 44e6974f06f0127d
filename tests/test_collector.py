"""The collector's tuning for the streaming processes."""

from __future__ import annotations

import gc

from backend.runtime import collector


def test_settle_freezes_what_start_up_built_and_collects_seldom():
    before = gc.get_threshold()
    built = [[] for _ in range(100)]  # what start-up made, tracked by the collector
    try:
        collector.settle()
        passed_over = {id(o) for o in gc.get_objects()}  # every generation the collector passes
        assert not any(id(o) in passed_over for o in built)
        assert gc.get_threshold()[0] == collector.YOUNG_COLLECTION_ALLOCATIONS
    finally:
        gc.set_threshold(*before)
