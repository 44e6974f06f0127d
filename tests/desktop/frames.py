"""Ticks as the backend's client API sends them, for the watchlist to take undecoded."""

from __future__ import annotations

import orjson

from backend.proxy.frames import FrameParts


def frame(symbol: str, ltp: float, mode: int = 2, **data) -> bytes:
    """A ``market_data`` frame of ``NSE:symbol`` in ``mode``, with ``ltp`` and ``data``."""
    parts = FrameParts.of(symbol, "NSE", mode, "simulator")
    return parts.frame(orjson.dumps({"symbol": symbol, "exchange": "NSE", "ltp": ltp, **data}))
