"""The ``[POOL]`` lines of a connection's load: each multiple of :data:`MILESTONE` its load passes
going up, and the moment it is full."""

from __future__ import annotations

import logging

from backend.pool.records import PooledConnection

log = logging.getLogger("feedpool.pool")

MILESTONE = 100  # a [POOL] line each time a connection's load crosses a multiple of this


def log_load(connection: PooledConnection, before: int, after: int) -> None:
    """``[POOL]`` lines for the milestones a connection's load passed going up."""
    index = connection.adapter.index
    extra = {"connection": index}
    for milestone in range((before // MILESTONE + 1) * MILESTONE, after + 1, MILESTONE):
        if milestone < connection.capacity:
            log.info(
                "[POOL] Connection %d: %d/%d symbols",
                index,
                milestone,
                connection.capacity,
                extra=extra,
            )
    if after >= connection.capacity > before:
        log.info(
            "[POOL] Connection %d full: %d/%d symbols",
            index,
            after,
            connection.capacity,
            extra=extra,
        )
