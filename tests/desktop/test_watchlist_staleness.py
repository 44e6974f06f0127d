"""The stale mark: rows whose prices are not live, from the ticks' silence and the bus.

The watch reads the time from a clock the tests move; one test runs on the real clock and timer.
"""

from __future__ import annotations

import time

import pytest
from bus_messages import connection_stats, pool_stats
from frames import frame
from PySide6.QtCore import Qt

from backend.bus.messages import BackendHealth, ConnectionHealth
from backend.instruments.symbol_lists import WatchEntry
from desktop.tables.columns import column_index
from desktop.watchlist.columns import STALE_PRICE_COLOUR, WATCHLIST_COLUMNS
from desktop.watchlist.model import WatchlistModel
from desktop.watchlist.staleness import STALE_SECONDS, StaleWatch

LTP = column_index(WATCHLIST_COLUMNS, "ltp")
STATUS = column_index(WATCHLIST_COLUMNS, "status")


class Clock:
    """The time now, moved on by the test."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


def subscribed(model: WatchlistModel, *symbols: str, connection: int = 1) -> None:
    """The backend's reply subscribing ``symbols`` (Quote) on ``connection``."""
    model.apply_subscribe_reply(
        {
            "type": "subscribe",
            "subscriptions": [
                {
                    "symbol": symbol,
                    "exchange": "NSE",
                    "status": "success",
                    "mode": 2,
                    "connection": connection,
                }
                for symbol in symbols
            ],
        }
    )


def refused(model: WatchlistModel, symbol: str) -> None:
    model.apply_subscribe_reply(
        {
            "type": "subscribe",
            "subscriptions": [
                {
                    "symbol": symbol,
                    "exchange": "NSE",
                    "status": "error",
                    "code": "MAX_CAPACITY_REACHED",
                    "message": "Maximum capacity reached",
                }
            ],
        }
    )


def backend_health(state: str, reason: str = "") -> BackendHealth:
    return BackendHealth(
        state=state,
        reason=reason,
        time=time.time(),
        ws="ws://127.0.0.1:8765",
        zmq="tcp://127.0.0.1:5555",
        tls_fingerprint=None,
        bus_public_key=None,
    )


def stale(model: WatchlistModel) -> dict[str, str]:
    return {row.symbol: row.stale for row in model.rows() if row.stale}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def model(qtbot) -> WatchlistModel:
    model = WatchlistModel(flush_interval_ms=10_000)
    model.add_entries([WatchEntry("SBIN", "NSE"), WatchEntry("TCS", "NSE")])
    return model


@pytest.fixture
def watch(model, clock) -> StaleWatch:
    return StaleWatch(model, check_ms=60_000, clock=clock)


def test_a_subscribed_symbol_that_stops_ticking_is_stale_until_it_ticks(model, watch, clock):
    subscribed(model, "SBIN", "TCS")
    model.push_frame(frame("SBIN", 800.0))
    assert watch.check() == 0
    clock.ahead = STALE_SECONDS - 1
    assert watch.check() == 0
    clock.ahead = STALE_SECONDS + 1
    assert watch.check() == 2  # TCS never ticked: silent since it was subscribed
    assert stale(model)["SBIN"].startswith("no tick since ")
    assert model.index(0, STATUS).data().startswith("stale: no tick since ")
    colour = model.index(0, LTP).data(Qt.ItemDataRole.ForegroundRole)
    assert colour.name() == STALE_PRICE_COLOUR
    model.push_frame(frame("SBIN", 801.0))
    clock.ahead = 0
    assert watch.check() == 0
    assert model.index(0, STATUS).data() == "subscribed"


def test_every_row_of_a_connection_that_is_down_is_stale(model, watch):
    subscribed(model, "SBIN", connection=1)
    subscribed(model, "TCS", connection=2)
    watch.pool(pool_stats(connection_stats(1), connection_stats(2, state="reconnecting")))
    assert stale(model) == {"TCS": "connection 2 reconnecting"}
    watch.health(
        ConnectionHealth(connection=1, state="session_expired", reason="token expired", time=0.0)
    )
    assert stale(model)["SBIN"] == "connection 1 session_expired: token expired"
    watch.pool(pool_stats(connection_stats(1), connection_stats(2)))
    assert stale(model) == {}


def test_every_row_with_prices_is_stale_while_the_backend_is_down(model, watch, clock):
    subscribed(model, "SBIN")
    model.push_frame(frame("TCS", 4000.0))  # TCS shows a price but is not subscribed yet
    refused(model, "TCS")
    assert stale(model) == {}  # not checked yet
    watch.pool(pool_stats(connection_stats(1)))
    assert stale(model) == {"TCS": "its prices are from an earlier subscription"}
    assert model.index(1, STATUS).data() == "waiting for room"
    clock.ahead = 4  # no SYS.POOL since: the backend is silent
    watch.check()
    assert set(stale(model)) == {"SBIN", "TCS"}
    assert stale(model)["SBIN"].startswith("no word from the backend since ")
    clock.ahead = 0
    watch.pool(pool_stats(connection_stats(1)))
    assert set(stale(model)) == {"TCS"}
    watch.health(backend_health("down", "stopped"))
    assert stale(model)["SBIN"] == "the backend is down (stopped)"
    watch.health(backend_health("ready"))
    assert set(stale(model)) == {"TCS"}


def test_the_mark_appears_and_clears_on_the_timer(qtbot, model):
    watch = StaleWatch(model, stale_seconds=0.3, check_ms=50)
    subscribed(model, "SBIN")
    model.push_frame(frame("SBIN", 800.0))
    qtbot.waitUntil(lambda: model.rows()[0].stale != "", timeout=2000)
    model.push_frame(frame("SBIN", 801.0))
    qtbot.waitUntil(lambda: model.rows()[0].stale == "", timeout=2000)
    assert watch.check() == 0
