"""The watchlist as the trader's priority order, on the real backend and simulator.

The backend runs as the app runs it, with a pool of one connection of five symbols, and the
watchlist pane is linked to it as the window links it: feed replies and ticks to the model, bus
messages to :meth:`WatchlistPane.handle_bus_message`. The tests follow a session in order: an
import counted by the backend's answers, room freed by a removal, waiting rows removed, modes
changed, a killed backend, a row removed before its answer.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from msgspec import Struct
from PySide6.QtCore import QSettings, Qt

from backend.bus.messages import ClientsStats, PoolStats
from backend.feed import CLIENTS_TOPIC, POOL_TOPIC
from backend.instruments.master import load_master
from desktop.link.backend_link import BackendLink
from desktop.link.process import READY
from desktop.tables.columns import column_index
from desktop.watchlist.columns import SUBSCRIBED, WAITING, WATCHLIST_COLUMNS
from desktop.watchlist.model import WatchlistModel
from desktop.watchlist.pane import WatchlistPane

CAPACITY = 5
START_MS = 20_000
ANSWER_MS = 10_000
API_KEY = "watchlist-priority-key"
XDG_NAMES = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")
WATCHLIST_LOG, FEED_LOG = "feedpool.desktop.watchlist", "feedpool.desktop.feed"
STATUS = column_index(WATCHLIST_COLUMNS, "status")
#: Modes alternate, so asking for them a mode at a time would fill the pool in another order.
PRIORITY_LIST = """NSE:SBIN,LTP
NSE:TCS,Quote
NSE:INFY,LTP
NSE:RELIANCE,Quote
NSE:HDFCBANK,LTP
NSE:ICICIBANK,Quote
NSE:ITC,LTP
NSE:LT,Quote
NSE:NOSUCH,Quote
no symbol here
"""


@dataclass
class Desk:
    """The watchlist pane linked to a backend it runs; the last message of each bus topic."""

    pane: WatchlistPane
    link: BackendLink | None = None
    last: dict[str, Struct] = field(default_factory=dict)
    #: The symbols each subscribe reply confirmed, with when it came.
    confirmed: list[tuple[float, set[str]]] = field(default_factory=list)

    @property
    def model(self) -> WatchlistModel:
        return self.pane.model

    def statuses(self) -> list[tuple[str, str]]:
        return [(row.symbol, row.status) for row in self.model.rows()]

    def subscribed(self) -> set[tuple[str, str, int]]:
        """What the rows say the backend serves: ``(symbol, exchange, mode)``."""
        return {(r.symbol, r.exchange, r.mode) for r in self.model.rows() if r.status == SUBSCRIBED}

    def backend_holds(self) -> set[tuple[str, str, int]] | None:
        """What the backend says this app's feed holds (``SYS.CLIENTS``), if it has said."""
        clients = self.last.get(CLIENTS_TOPIC)
        if not isinstance(clients, ClientsStats):
            return None
        address = self.link.feed.local_address
        mine = [session for session in clients.sessions if session.peer == address]
        return {tuple(held) for held in mine[0].symbols} if mine else None

    def pool_holds(self) -> int | None:
        pool = self.last.get(POOL_TOPIC)
        return pool.total_symbols if isinstance(pool, PoolStats) else None

    def bus(self, topic: str, message: Struct) -> None:
        """Bus messages to the pane, as the window hands them on."""
        self.last[topic] = message
        self.pane.handle_bus_message(topic, message)

    def feed(self, message: dict[str, Any]) -> None:
        """Feed messages as the window routes them: ticks and subscribe replies to the model."""
        if message.get("type") == "market_data":
            self.model.push_tick(message)
        elif message.get("type") == "subscribe":
            self.model.apply_subscribe_reply(message)
            succeeded = {s["symbol"] for s in message["subscriptions"] if s["status"] == "success"}
            self.confirmed.append((time.time(), succeeded))


@pytest.fixture(scope="module")
def desk(qt_event_loop, qapp, tmp_path_factory):
    home = tmp_path_factory.mktemp("priority-home")
    dirs = {name: str(home / name.lower()) for name in XDG_NAMES}
    environment = {
        **dirs,
        "WEBSOCKET_PORT": "0",
        "ZMQ_PORT": "0",
        "SIMULATOR_TICKS_PER_SECOND": "5",
        "SIMULATOR_SEED": "7",
        "FEEDPOOL_API_KEY": API_KEY,
        "MAX_WEBSOCKET_CONNECTIONS": "1",
        "MAX_SYMBOLS_PER_WEBSOCKET": str(CAPACITY),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in dirs.items():
            patch.setenv(name, value)
        for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
            QSettings.setPath(fmt, QSettings.Scope.UserScope, str(home / "qsettings"))
        pane = WatchlistPane(WatchlistModel(), load_master())
        pane.resize(1000, 500)
        pane.show()
        desk = Desk(pane)
        desk.link = BackendLink(
            pane.model, desk.bus, desk.feed, lambda record: None, environment=environment
        )
        desk.link.state_changed.connect(desk.pane.set_backend_state)
        desk.link.start()
        yield desk
        stopping = qt_event_loop.create_task(desk.link.stop())
        deadline = time.monotonic() + 10
        while not stopping.done() and time.monotonic() < deadline:
            qapp.processEvents()
        pane.close()


@pytest.fixture
def records(caplog) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="feedpool.desktop")
    return caplog


def messages(records: pytest.LogCaptureFixture, logger: str = WATCHLIST_LOG) -> list[str]:
    """The lines logged by ``logger`` (and those under it)."""
    return [r.getMessage() for r in records.records if r.name.startswith(logger)]


def feed_warnings(records: pytest.LogCaptureFixture) -> list[str]:
    """The feed's warnings: requests the backend refused, unsubscriptions that failed."""
    return [
        r.getMessage()
        for r in records.records
        if r.name.startswith(FEED_LOG) and r.levelno >= logging.WARNING
    ]


def select(pane: WatchlistPane, *symbols: str) -> None:
    """Select the rows of these NSE symbols, and only them."""
    pane.view.reveal((symbol, "NSE") for symbol in symbols)


def test_an_import_counts_what_the_backend_answered(desk, qtbot, tmp_path, records):
    qtbot.waitUntil(lambda: desk.link.feed.connected, timeout=START_MS)
    path = tmp_path / "priority.txt"
    path.write_text(PRIORITY_LIST, encoding="utf-8")
    desk.pane.import_file(path)
    expected = (
        "priority.txt: added 8; subscribed 5; waiting for room 3; unknown symbols 1 (NSE:NOSUCH);"
        " lines not understood 1 (line 10: 'no symbol here')."
    )
    qtbot.waitUntil(lambda: desk.pane.summary_label.text() == expected, timeout=ANSWER_MS)
    assert desk.statuses() == [
        ("SBIN", SUBSCRIBED),
        ("TCS", SUBSCRIBED),
        ("INFY", SUBSCRIBED),
        ("RELIANCE", SUBSCRIBED),
        ("HDFCBANK", SUBSCRIBED),
        ("ICICIBANK", WAITING),
        ("ITC", WAITING),
        ("LT", WAITING),
    ]
    waiting = desk.model.index(desk.model.row_of(("ITC", "NSE")), STATUS)
    assert waiting.data() == "waiting for room"
    assert waiting.data(Qt.ItemDataRole.ToolTipRole).startswith(
        "waiting for room: Maximum capacity reached: 5/5 symbols held on 1 connection"
    )
    assert messages(records) == [f"Watchlist: {expected}"]


def test_a_waiting_row_is_subscribed_when_room_frees_in_order(desk, qtbot, records):
    select(desk.pane, "TCS")
    desk.pane.view.remove_selected()
    qtbot.waitUntil(lambda: desk.model.rows()[4].status == SUBSCRIBED, timeout=ANSWER_MS)
    assert desk.statuses()[4:] == [("ICICIBANK", SUBSCRIBED), ("ITC", WAITING), ("LT", WAITING)]
    qtbot.waitUntil(lambda: desk.backend_holds() == desk.subscribed(), timeout=ANSWER_MS)
    assert messages(records) == ["Removed 1 symbol from the watchlist: NSE:TCS (1 subscribed)"]


def test_removed_waiting_rows_are_not_unsubscribed_and_modes_change_in_place(desk, qtbot, records):
    desk.pane.import_typed("NSE:MARUTI\nNSE:TITAN", "NSE", 2)
    qtbot.waitUntil(lambda: desk.model.rows()[-1].status == WAITING, timeout=ANSWER_MS)
    select(desk.pane, "MARUTI", "TITAN")
    desk.pane.view.remove_selected()

    select(desk.pane, "SBIN")
    menu = desk.pane.view.context_menu()
    desk.pane.view.mode_actions[3].trigger()  # Depth
    menu.deleteLater()
    summary = "selected rows: mode changed 1 (NSE:SBIN to Depth); subscribed 1."
    qtbot.waitUntil(lambda: desk.pane.summary_label.text() == summary, timeout=ANSWER_MS)
    desk.pane.import_typed("INFY", "NSE", 2)  # the add-box: INFY is there in LTP
    summary = "typed symbol: mode changed 1 (NSE:INFY to Quote); subscribed 1."
    qtbot.waitUntil(lambda: desk.pane.summary_label.text() == summary, timeout=ANSWER_MS)

    # Each row in its place, the room kept: the rows waiting still wait.
    assert [(row.symbol, row.mode, row.status) for row in desk.model.rows()] == [
        ("SBIN", 3, SUBSCRIBED),
        ("INFY", 2, SUBSCRIBED),
        ("RELIANCE", 2, SUBSCRIBED),
        ("HDFCBANK", 1, SUBSCRIBED),
        ("ICICIBANK", 2, SUBSCRIBED),
        ("ITC", 1, WAITING),
        ("LT", 2, WAITING),
    ]
    # The backend holds the new modes only (the old ones let go of), and what the rows say.
    qtbot.waitUntil(lambda: desk.backend_holds() == desk.subscribed(), timeout=ANSWER_MS)
    assert desk.link.feed.held()[("SBIN", "NSE")] == {3}
    qtbot.waitUntil(lambda: desk.model.rows()[0].depth is not None, timeout=ANSWER_MS)
    assert feed_warnings(records) == []  # nothing failed to unsubscribe
    assert messages(records) == [
        "Watchlist: typed symbol: added 2; waiting for room 2.",
        "Removed 2 symbols from the watchlist: NSE:MARUTI, NSE:TITAN (2 waiting for room)",
        "Watchlist: selected rows: mode changed 1 (NSE:SBIN to Depth); subscribed 1.",
        "Watchlist: typed symbol: mode changed 1 (NSE:INFY to Quote); subscribed 1.",
    ]


def test_after_a_killed_backend_the_same_rows_hold_the_room(desk, qtbot):
    before = desk.statuses()
    os.kill(desk.link.process.pid, signal.SIGKILL)
    # The app sees its backend die at once, though the dead backend says nothing on the bus.
    qtbot.waitUntil(
        lambda: desk.model.rows()[0].stale.startswith("the backend is"), timeout=START_MS
    )
    assert desk.model.index(0, STATUS).data().startswith("stale: the backend is")
    qtbot.waitUntil(lambda: desk.link.process.state == READY, timeout=START_MS)
    # Every row asked for again on the new backend, in order, and answered as before.
    qtbot.waitUntil(
        lambda: (
            set(desk.link.feed.held())
            == {(s, "NSE") for s, status in before if status == SUBSCRIBED}
        ),
        timeout=ANSWER_MS,
    )
    qtbot.waitUntil(lambda: desk.backend_holds() == desk.subscribed(), timeout=ANSWER_MS)
    assert desk.statuses() == before
    qtbot.waitUntil(lambda: not any(row.stale for row in desk.model.rows()), timeout=ANSWER_MS)


def test_a_row_removed_before_its_answer_is_let_go_of_when_it_comes(desk, qtbot, records):
    select(desk.pane, "HDFCBANK", "ITC", "LT")
    desk.pane.view.remove_selected()  # one room free, nobody waiting for it
    desk.pane.import_typed("NSE:WIPRO", "NSE", 2)
    desk.model.remove_keys([("WIPRO", "NSE")])  # before the backend has answered
    qtbot.waitUntil(lambda: "WIPRO" in desk.confirmed[-1][1], timeout=ANSWER_MS)
    answered = desk.confirmed[-1][0]
    # The pool as it is after the answer: WIPRO let go of again.
    qtbot.waitUntil(
        lambda: desk.last[POOL_TOPIC].time > answered and desk.pool_holds() == 4,
        timeout=ANSWER_MS,
    )
    qtbot.waitUntil(lambda: desk.backend_holds() == desk.subscribed(), timeout=ANSWER_MS)
    assert ("WIPRO", "NSE") not in desk.link.feed.held()
    assert feed_warnings(records) == []
