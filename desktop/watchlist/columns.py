"""A watchlist row and the column spec that shows it (also used by the CSV export).

A row's status is what the backend last answered for it: pending until it answers, subscribed
(on a connection of a broker account), waiting for room (refused for capacity: it is asked again
when room frees), waiting for its account (another account carried it while its own could not,
and needed the room back: the backend serves it again when its account can) or rejected (with
the reason). With several broker accounts a row says which account carries it, and that it is
borrowed while another account than its own carries it (moved there by a failover). A row whose
prices are not live carries a stale mark, the reason (:mod:`desktop.watchlist.staleness`): its
status cell says so and its price cells are greyed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backend.instruments.symbol_lists import MODE_NAMES, WatchEntry
from desktop.colours import (
    LEVEL_COLOURS,
    STATE_COLOURS,
    SUMMARY_COLOURS,
    WATCH_STATUS_COLOURS,
    sign_colour,
)
from desktop.tables.columns import Column

PENDING, SUBSCRIBED, WAITING, REJECTED = "pending", "subscribed", "waiting for room", "rejected"
WAITING_ACCOUNT = "waiting for its account"
#: The colour of each status (waiting: queued, as a connection on its way), and of the status
#: cell of a stale row.
STATUS_COLOURS = {
    **WATCH_STATUS_COLOURS,
    WAITING: STATE_COLOURS["connecting"],
    WAITING_ACCOUNT: STATE_COLOURS["connecting"],
}
STALE_COLOUR = SUMMARY_COLOURS["warning"]
#: The colour of the prices of a stale row.
STALE_PRICE_COLOUR = LEVEL_COLOURS["DEBUG"]


@dataclass(slots=True)
class WatchRow:
    """A watched symbol and what the feed last said about it.

    ``status`` is one of :data:`PENDING`, :data:`SUBSCRIBED` (on ``connection`` of
    ``account``; the connection unknown, None, after a move), :data:`WAITING`,
    :data:`WAITING_ACCOUNT` or :data:`REJECTED`, with the backend's ``reason``; ``home`` is the
    account whose symbol it is while another carries it (borrowed), else empty; ``asked`` while a
    subscribe asked again for it is unanswered. ``last_tick`` is the exchange's time of the
    last tick, epoch milliseconds; ``heard`` when the last tick arrived and ``subscribed_at``
    when the subscription was confirmed, epoch seconds (0 for never). ``stale`` says why its
    prices are not live, empty when they are. ``ltp_move`` is the sign of the last price
    change, for colour. ``depth`` is the last best-five book of a Depth row.
    """

    symbol: str
    exchange: str
    mode: int
    connection: int | None = None
    account: str = ""
    home: str = ""
    ltp: float | None = None
    change_percent: float | None = None
    volume: int | None = None
    last_tick: int | None = None
    status: str = PENDING
    reason: str = ""
    asked: bool = False
    heard: float = 0.0
    subscribed_at: float = 0.0
    stale: str = ""
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
    def label(self) -> str:
        return self.entry.label

    @property
    def account_text(self) -> str:
        """The account cell: the account carrying it, and whether it is borrowed."""
        return f"{self.account} (borrowed)" if self.account and self.home else self.account

    @property
    def status_text(self) -> str:
        """The status cell: a waiting row's reason is left to the tooltip; a stale subscribed
        row says why it is stale."""
        if self.status == SUBSCRIBED and self.stale:
            return f"stale: {self.stale}"
        if self.reason and self.status != WAITING:
            return f"{self.status}: {self.reason}"
        return self.status

    @property
    def status_tooltip(self) -> str:
        """The whole story: the status, the backend's reason and the stale mark."""
        text = f"{self.status}: {self.reason}" if self.reason else self.status
        if self.status == SUBSCRIBED and self.connection is not None:
            text += f" on connection {self.connection}"
        if self.status == SUBSCRIBED and self.account:
            text += f" of account {self.account}"
            if self.home:
                text += f", borrowed for account {self.home}"
        return f"{text}\nstale: {self.stale}" if self.stale else text


def clock_time(epoch_seconds: float) -> str:
    """The local time of day, as the table shows times."""
    return datetime.fromtimestamp(epoch_seconds).strftime("%H:%M:%S")


def _price_colour(row: WatchRow, sign: float) -> str | None:
    return STALE_PRICE_COLOUR if row.stale else sign_colour(sign)


def _status_colour(row: WatchRow) -> str | None:
    if row.status == SUBSCRIBED and row.stale:
        return STALE_COLOUR
    return STATUS_COLOURS.get(row.status)


def _stale_colour(row: WatchRow) -> str | None:
    return STALE_PRICE_COLOUR if row.stale else None


WATCHLIST_COLUMNS = (
    Column("symbol", "Symbol", width=26),
    Column("exchange", "Exchange", width=9),
    Column("mode", "Mode", width=6, fmt=lambda mode: MODE_NAMES.get(mode, str(mode))),
    Column(
        "account",
        "Account",
        width=12,
        value=lambda row: row.account_text,
        about="The broker account carrying it; borrowed: not its own, which cannot serve it",
    ),
    Column("connection", "Connection", width=10, align="right"),
    Column(
        "ltp",
        "LTP",
        width=10,
        align="right",
        fmt=lambda price: f"{price:,.2f}",
        colour=lambda row: _price_colour(row, row.ltp_move),
    ),
    Column(
        "change_percent",
        "Change %",
        width=8,
        align="right",
        fmt=lambda percent: f"{percent:+.2f}",
        colour=lambda row: _price_colour(row, row.change_percent or 0),
    ),
    Column(
        "volume",
        "Volume",
        width=12,
        align="right",
        fmt=lambda volume: f"{volume:,}",
        colour=_stale_colour,
    ),
    Column(
        "last_tick",
        "Last tick",
        width=9,
        fmt=lambda milliseconds: clock_time(milliseconds / 1000),
        colour=_stale_colour,
    ),
    Column(
        "status",
        "Status",
        width=24,
        value=lambda row: row.status_text,
        colour=_status_colour,
        tooltip=lambda row: row.status_tooltip,
    ),
)
