"""A watchlist row and the column spec that shows it (also used by the CSV export)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backend.instruments.symbol_lists import MODE_NAMES, WatchEntry
from desktop.colours import WATCH_STATUS_COLOURS, sign_colour
from desktop.tables.columns import Column

PENDING, SUBSCRIBED, REJECTED = "pending", "subscribed", "rejected"


@dataclass(slots=True)
class WatchRow:
    """A watched symbol and what the feed last said about it.

    ``status`` is pending until the backend answers the subscription, then subscribed (on
    ``connection``) or rejected (with ``reason``). ``last_tick`` is epoch milliseconds.
    ``ltp_move`` is the sign of the last price change, for colour. ``depth`` is the last
    best-five book of a Depth row (the ``depth`` object of its ticks).
    """

    symbol: str
    exchange: str
    mode: int
    connection: int | None = None
    ltp: float | None = None
    change_percent: float | None = None
    volume: int | None = None
    last_tick: int | None = None
    status: str = PENDING
    reason: str = ""
    ltp_move: int = 0
    depth: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, entry: WatchEntry) -> WatchRow:
        return cls(entry.symbol, entry.exchange, entry.mode)

    @property
    def key(self) -> tuple[str, str]:
        return (self.symbol, self.exchange)

    @property
    def entry(self) -> WatchEntry:
        return WatchEntry(self.symbol, self.exchange, self.mode)

    @property
    def status_text(self) -> str:
        return f"{self.status}: {self.reason}" if self.reason else self.status


def _tick_time(milliseconds: int) -> str:
    return datetime.fromtimestamp(milliseconds / 1000).strftime("%H:%M:%S")


WATCHLIST_COLUMNS = (
    Column("symbol", "Symbol", width=26),
    Column("exchange", "Exchange", width=9),
    Column("mode", "Mode", width=6, fmt=lambda mode: MODE_NAMES.get(mode, str(mode))),
    Column("connection", "Connection", width=10, align="right"),
    Column(
        "ltp",
        "LTP",
        width=10,
        align="right",
        fmt=lambda price: f"{price:,.2f}",
        colour=lambda row: sign_colour(row.ltp_move),
    ),
    Column(
        "change_percent",
        "Change %",
        width=8,
        align="right",
        fmt=lambda percent: f"{percent:+.2f}",
        colour=lambda row: sign_colour(row.change_percent or 0),
    ),
    Column("volume", "Volume", width=12, align="right", fmt=lambda volume: f"{volume:,}"),
    Column("last_tick", "Last tick", width=9, fmt=_tick_time),
    Column(
        "status",
        "Status",
        width=24,
        value=lambda row: row.status_text,
        colour=lambda row: WATCH_STATUS_COLOURS.get(row.status),
        tooltip=lambda row: row.status_text,
    ),
)
