"""Waiting for another process to end, for a child that must not outlive its parent."""

from __future__ import annotations

import asyncio

import psutil

POLL_SECONDS = 0.25


async def process_ended(pid: int) -> None:
    """Return once process ``pid`` has ended (or is left a zombie); polls, as no event tells."""
    try:
        process = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while _running(process):  # noqa: ASYNC110
        await asyncio.sleep(POLL_SECONDS)


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
