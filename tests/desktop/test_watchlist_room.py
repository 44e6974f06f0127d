"""Rows waiting for room: asked for again in watchlist order as the pool's room frees.

The backend's part (the pool refusing, room freeing) runs for real in
``test_watchlist_priority.py``; here the pool's room is given as ``SYS.POOL`` messages.
"""

from __future__ import annotations

import pytest
from bus_messages import connection_stats, pool_stats

from backend.instruments.symbol_lists import WatchEntry
from desktop.watchlist.columns import SUBSCRIBED, WAITING
from desktop.watchlist.model import WatchlistModel
from desktop.watchlist.room import RoomWatch, free_room

SYMBOLS = ["SBIN", "TCS", "INFY", "RELIANCE", "ITC"]


def answer(model: WatchlistModel, subscribed: list[str], waiting: list[str]) -> None:
    """The backend's reply: ``subscribed`` served on connection 1, ``waiting`` refused for
    capacity."""
    model.apply_subscribe_reply(
        {
            "type": "subscribe",
            "subscriptions": [
                {"symbol": s, "exchange": "NSE", "status": "success", "mode": 2, "connection": 1}
                for s in subscribed
            ]
            + [
                {
                    "symbol": s,
                    "exchange": "NSE",
                    "status": "error",
                    "code": "MAX_CAPACITY_REACHED",
                    "message": "Maximum capacity reached",
                }
                for s in waiting
            ],
        }
    )


def pool(held: int, capacity: int = 2, connections: int = 1, may_open: int = 1):
    return pool_stats(
        *(connection_stats(n + 1, symbols=held, capacity=capacity) for n in range(connections)),
        max_connections=may_open,
        max_symbols_per_connection=capacity,
    )


@pytest.fixture
def model(qtbot) -> WatchlistModel:
    model = WatchlistModel(flush_interval_ms=10_000)
    model.add_entries([WatchEntry(symbol, "NSE") for symbol in SYMBOLS])
    answer(model, SYMBOLS[:2], SYMBOLS[2:])
    return model


def test_free_room_counts_open_connections_and_those_the_pool_may_open():
    assert free_room(pool(held=1, capacity=5)) == 4
    assert free_room(pool(held=5, capacity=5, may_open=3)) == 10
    assert free_room(pool_stats(max_connections=2, max_symbols_per_connection=5)) == 10


def test_the_first_waiting_rows_are_asked_for_as_room_frees(qtbot, model):
    asked: list[list[WatchEntry]] = []
    model.subscribe_again.connect(asked.append)
    room = RoomWatch()
    assert model.retry_waiting(room.room(pool(held=2))) == []  # full
    room.refused()
    assert model.retry_waiting(room.room(pool(held=1))) == [WatchEntry("INFY", "NSE")]
    # Asked for and not answered yet: the same room asks for nobody else.
    assert model.retry_waiting(room.room(pool(held=1))) == []
    answer(model, ["INFY"], [])
    assert model.retry_waiting(room.room(pool(held=0))) == [
        WatchEntry("RELIANCE", "NSE"),
        WatchEntry("ITC", "NSE"),
    ]
    assert asked == [
        [WatchEntry("INFY", "NSE")],
        [WatchEntry("RELIANCE", "NSE"), WatchEntry("ITC", "NSE")],
    ]
    assert [row.status for row in model.rows()] == [SUBSCRIBED] * 3 + [WAITING] * 2


def test_room_the_broker_does_not_allow_is_not_asked_for_again():
    """SYS.POOL shows room on connections the broker refused to open: after a refusal that room
    is taken as none, and only room freed beyond it counts."""
    room = RoomWatch()
    assert room.room(pool(held=2, may_open=3)) == 4  # two connections more, as configured
    room.refused()  # the broker allowed no second connection
    assert room.room(pool(held=2, may_open=3)) == 0
    assert room.room(pool(held=1, may_open=3)) == 1  # a symbol let go of
    assert room.room(pool(held=2, may_open=3)) == 0
    assert room.room(pool(held=0, may_open=3)) == 2


def test_retry_now_asks_again_for_the_rows_not_served(qtbot, model):
    with qtbot.waitSignal(model.subscribe_again) as asked:
        assert model.retry(range(5)) == [WatchEntry(s, "NSE") for s in SYMBOLS[2:]]
    assert asked.args[0] == [WatchEntry(s, "NSE") for s in SYMBOLS[2:]]
    assert model.retry([0, 1]) == []  # subscribed
