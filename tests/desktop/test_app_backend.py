"""The app on the real backend: one app and its backend subprocess, shared by the tests in order.

The backend runs as the app runs it (``python -m backend --parent-pid ...``) with OS-chosen ports
and a low simulator rate. The tests follow a session: start, import a large watchlist, read the
logs, refuse bad files, survive a killed backend, apply settings, quit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import time
from collections import Counter
from dataclasses import dataclass

import psutil
import pytest
from drops import drop_files
from PySide6.QtCore import QItemSelection, QItemSelectionModel, QSettings
from websockets.asyncio.client import connect

from backend.instruments.master import load_master
from backend.runtime.resources import resource_path
from desktop.app import link_window, serve
from desktop.link.backend_link import BackendLink
from desktop.link.process import READY, STOPPED
from desktop.logs.entry import LEVELS
from desktop.logs.handler import LogModelHandler
from desktop.main_window import MainWindow

START_MS = 20_000
TICK_MS = 20_000
API_KEY = "desktop-test-key"
XDG_NAMES = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")


@dataclass
class RunningApp:
    window: MainWindow
    link: BackendLink
    serving: object  # the asyncio task running desktop.app.serve

    @property
    def model(self):
        return self.window.watchlist_model

    @property
    def pid(self) -> int | None:
        return self.link.process.pid


@pytest.fixture(scope="module")
def app(qt_event_loop, qapp, tmp_path_factory):
    """The app serving one backend, in dirs of its own; the backend is stopped at the end."""
    home = tmp_path_factory.mktemp("app-home")
    dirs = {name: str(home / name.lower()) for name in XDG_NAMES}
    environment = {
        **dirs,
        "WEBSOCKET_PORT": "0",
        "ZMQ_PORT": "0",
        "SIMULATOR_TICKS_PER_SECOND": "2",
        "SIMULATOR_SEED": "11",
        "FEEDPOOL_API_KEY": API_KEY,
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in dirs.items():
            patch.setenv(name, value)  # the window's watchlist and settings files go here too
        for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
            QSettings.setPath(fmt, QSettings.Scope.UserScope, str(home / "qsettings"))
        window = MainWindow(load_master())
        handler = LogModelHandler(window.log_model)
        logging.getLogger().addHandler(handler)
        window.resize(1200, 800)
        window.show()
        link = link_window(window, environment)
        serving = qt_event_loop.create_task(serve(window, link))
        yield RunningApp(window, link, serving)
        if not serving.done():
            window.close()
            deadline = time.monotonic() + 10
            while not serving.done() and time.monotonic() < deadline:
                qapp.processEvents()
        logging.getLogger().removeHandler(handler)


def gauge_values(window: MainWindow) -> dict[object, str]:
    """The big number on each gauge: ``"total"`` and each connection index."""
    values: dict[object, str] = {"total": window.gauges.total.reading.value}
    values.update((index, gauge.reading.value) for index, gauge in window.gauges.gauges.items())
    return values


def gauges_match_rows(window: MainWindow) -> bool:
    """The gauges show as many symbols per connection as the watchlist's rows are on."""
    rows = window.watchlist_model.rows()
    held = Counter(row.connection for row in rows)
    shown = gauge_values(window)
    total = shown.pop("total")
    return (
        total == f"{len(rows):,}"
        and all(shown.get(index) == f"{count:,}" for index, count in held.items())
        and all(value == f"{held.get(index, 0):,}" for index, value in shown.items())
    )


def test_start_reports_ready(app, qtbot):
    qtbot.waitUntil(lambda: app.link.process.state == READY, timeout=START_MS)
    assert app.window.backend_label.text().startswith("Backend: ready (simulator, ws://127.0.0.1:")
    qtbot.waitUntil(lambda: app.link.feed.connected and app.link.bus.delivering)
    assert gauge_values(app.window) == {"total": "0"}


def backend_sequences(window: MainWindow) -> list[int]:
    """The numbers of the backend records in the log pane, in the order shown."""
    return [e.sequence for e in window.log_model.entries() if e.sequence is not None]


def test_each_backend_record_appears_once(app, qtbot):
    model = app.window.log_model
    qtbot.waitUntil(
        lambda: any(e.message.startswith("Client 1 connected from") for e in model.entries())
    )
    # Records come on stderr and on the bus; once both streams are read, every number of the run
    # is shown, and each once.
    qtbot.waitUntil(
        lambda: (
            sorted(backend_sequences(app.window))
            == list(range(1, max(backend_sequences(app.window)) + 1))
        )
    )
    assert len(set(backend_sequences(app.window))) == len(backend_sequences(app.window))
    connected = [e for e in model.entries() if e.message.startswith("Client 1 connected from")]
    assert len(connected) == 1


def backend_url(window: MainWindow) -> str:
    """The client API's URL, as the status bar names it."""
    match = re.search(r"ws://\S+?(?=\))", window.backend_label.text())
    assert match, window.backend_label.text()
    return match[0]


async def second_client(url: str, leave: asyncio.Event) -> None:
    """A trader's program: it subscribes two symbols and stays until ``leave`` is set."""
    async with connect(url) as websocket:
        await websocket.send(json.dumps({"action": "authenticate", "api_key": API_KEY}))
        await websocket.recv()
        symbols = [{"symbol": "SBIN", "exchange": "NSE"}, {"symbol": "TCS", "exchange": "NSE"}]
        await websocket.send(json.dumps({"action": "subscribe", "symbols": symbols, "mode": 1}))
        await leave.wait()


def test_a_second_client_appears_with_its_subscriptions_and_leaves(app, qt_event_loop, qtbot):
    pane = app.window.clients_pane
    qtbot.waitUntil(lambda: [row.own for row in pane.model.rows()] == [True], timeout=TICK_MS)
    assert pane.model.rows()[0].name.endswith("(this app)")
    leave = asyncio.Event()
    client = qt_event_loop.create_task(second_client(backend_url(app.window), leave))
    try:
        qtbot.waitUntil(
            lambda: [row.stats.subscriptions for row in pane.model.rows() if not row.own] == [2],
            timeout=TICK_MS,
        )
        other = next(n for n, row in enumerate(pane.model.rows()) if not row.own)
        assert pane.model.rows()[other].stats.authenticated
        pane.view.selectRow(other)
        assert pane.holdings.stringList() == ["NSE:SBIN  LTP", "NSE:TCS  LTP"]
    finally:
        leave.set()
        qtbot.waitUntil(client.done)
    qtbot.waitUntil(lambda: len(pane.model.rows()) == 1, timeout=TICK_MS)
    assert pane.model.rows()[0].own
    assert pane.holdings.stringList() == []


def test_a_dropped_csv_fills_the_pool_and_ticks(app, qtbot):
    drop_files(app.window.watchlist_pane, resource_path("watchlists", "fno_2500.csv"))
    assert len(app.model.entries()) == 2500
    expected = {"total": "2,500", 1: "1,000", 2: "1,000", 3: "500"}
    qtbot.waitUntil(lambda: gauge_values(app.window) == expected, timeout=TICK_MS)
    qtbot.waitUntil(lambda: all(row.ltp is not None for row in app.model.rows()), timeout=TICK_MS)
    first = [row.ltp for row in app.model.rows()]
    qtbot.waitUntil(
        lambda: (
            sum(row.ltp != ltp for row, ltp in zip(app.model.rows(), first, strict=True)) >= 500
        ),
        timeout=TICK_MS,
    )

    view = app.window.watchlist_pane.view
    selection = QItemSelection(view.model().index(1900, 0), view.model().index(2499, 0))
    view.selectionModel().select(
        selection, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.Rows
    )
    view.remove_selected()
    assert len(app.model.entries()) == 1900
    qtbot.waitUntil(lambda: gauges_match_rows(app.window), timeout=TICK_MS)
    assert gauge_values(app.window)["total"] == "1,900"


def test_the_history_plots_a_line_per_connection(app, qtbot):
    history = app.window.history_pane
    qtbot.waitUntil(lambda: sorted(history.curves) == [1, 2, 3], timeout=TICK_MS)
    qtbot.waitUntil(
        lambda: all(len(curve.getData()[0]) >= 2 for curve in history.curves.values()),
        timeout=TICK_MS,
    )
    # The connections that still hold symbols tick (the third holds none since rows were removed).
    qtbot.waitUntil(
        lambda: all(history.curves[n].getData()[1][-1] > 0 for n in (1, 2)), timeout=TICK_MS
    )
    latest = [curve.getData()[1][-1] for curve in history.curves.values()]
    assert history.total_curve.getData()[1][-1] == pytest.approx(sum(latest))
    assert len(history.lag_curve.getData()[0]) >= 1  # the feed's lag, sampled from its ticks


def test_the_detail_of_a_depth_row_shows_five_bids_below_five_asks(app, qtbot):
    app.window.watchlist_pane.import_typed("NSE:SBIN", "NSE", 3)
    view = app.window.watchlist_pane.view
    source_row = app.model.row_of(("SBIN", "NSE"))
    view.setCurrentIndex(view.proxy.mapFromSource(app.model.index(source_row, 0)))
    book = app.window.detail_pane.book
    qtbot.waitUntil(lambda: book.isVisible() and all(book.prices()), timeout=TICK_MS)
    assert book.sides() == ["Ask"] * 5 + ["Bid"] * 5
    prices = [float(price.replace(",", "")) for price in book.prices()]
    asks, bids = prices[:5], prices[5:]
    assert asks == sorted(asks, reverse=True) and bids == sorted(bids, reverse=True)
    assert min(asks) > max(bids)
    assert app.window.detail_pane.title.text().startswith("NSE:SBIN  Depth  LTP ")
    app.model.remove_keys([("SBIN", "NSE")])


def test_the_log_pane_shows_pool_lines_filters_and_exports(app, qtbot, tmp_path):
    model, pane = app.window.log_model, app.window.log_pane
    qtbot.waitUntil(
        lambda: any(e.message.startswith("[POOL] Connection 3") for e in model.entries())
    )
    pane.set_paused(True)  # hold new records back while the view is checked
    try:
        assert any(entry.level == "INFO" for entry in pane.proxy.visible_entries())
        pane.level_combo.setCurrentIndex(pane.level_combo.findData(LEVELS["WARNING"]))
        assert all(entry.levelno >= LEVELS["WARNING"] for entry in pane.proxy.visible_entries())
        pane.level_combo.setCurrentIndex(pane.level_combo.findData(LEVELS["INFO"]))
        pane.search_edit.setText("[POOL]")
        pane.apply_search()
        visible = list(pane.proxy.visible_entries())
        assert visible[0].message.startswith("[POOL] Created pool")  # from stderr, at start
        assert len(visible) >= 4 and all("[POOL]" in entry.message for entry in visible)

        dialog = app.window.log_export_dialog
        dialog.open()
        dialog.view_button.setChecked(True)
        dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("jsonl"))
        path = tmp_path / "pool.jsonl"
        dialog.path_edit.setText(str(path))
        with qtbot.waitSignal(dialog.exported):
            dialog.export()
        written = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert [record["message"] for record in written] == [e.message for e in visible]
    finally:
        pane.search_edit.clear()
        pane.apply_search()
        pane.set_paused(False)


@pytest.mark.parametrize(
    "case",
    [
        (
            "chart.csv",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "chart.csv is not a text file (it holds binary data). The watchlist is unchanged.",
        ),
        ("empty.csv", b"", "empty.csv is empty. The watchlist is unchanged."),
        (
            "unknown.csv",
            b"symbol,exchange\nNOSUCH,NSE\nNOTHING,NFO\n",
            "unknown.csv: added 0; unknown symbols 2 (NSE:NOSUCH, NFO:NOTHING)."
            " The watchlist is unchanged.",
        ),
    ],
)
def test_bad_files_are_refused_with_a_reason(app, qtbot, tmp_path, case):
    name, content, message = case
    before = app.model.entries()
    wanted = app.link.feed.wanted()
    path = tmp_path / name
    path.write_bytes(content)
    with qtbot.waitSignal(app.window.watchlist_pane.import_finished) as finished:
        drop_files(app.window.watchlist_pane, path)
    assert finished.args[0].severity == "error"
    assert app.window.watchlist_pane.summary_label.text() == message
    assert app.model.entries() == before
    assert app.link.feed.wanted() == wanted


def test_a_killed_backend_is_restarted_and_every_symbol_ticks_again(app, qtbot):
    states: list[tuple[str, str]] = []
    app.link.process.state_changed.connect(lambda state, detail: states.append((state, detail)))
    killed = app.pid
    killed_ms = time.time() * 1000
    os.kill(killed, signal.SIGKILL)

    qtbot.waitUntil(lambda: bool(states))
    assert app.window.backend_label.text().startswith("Backend: restarting (it crashed or was")
    qtbot.waitUntil(lambda: app.link.process.state == READY, timeout=START_MS)
    assert app.pid != killed
    assert states[0] == (
        "restarting",
        "it crashed or was killed by signal 9; starting again in 0.5 s",
    )
    assert [state for state, _ in states[1:]] == ["starting", "ready"]
    assert any(
        e.message.startswith("The backend stopped: it crashed or was killed")
        for e in app.window.log_model.entries()
    )
    qtbot.waitUntil(
        lambda: all(row.last_tick and row.last_tick > killed_ms for row in app.model.rows()),
        timeout=TICK_MS,
    )
    qtbot.waitUntil(lambda: gauges_match_rows(app.window), timeout=TICK_MS)


def test_applied_settings_restart_the_backend(app, qtbot):
    before = app.pid
    dialog = app.window.settings_dialog
    dialog.open()
    dialog.fields["MAX_WEBSOCKET_CONNECTIONS"].setText("4")
    assert dialog.save()
    qtbot.waitUntil(lambda: app.link.process.state == READY and app.pid != before, timeout=START_MS)
    qtbot.waitUntil(
        lambda: "of 4 connections" in " ".join(app.window.gauges.total.reading.details),
        timeout=TICK_MS,
    )
    qtbot.waitUntil(lambda: gauges_match_rows(app.window), timeout=TICK_MS)


def test_a_new_session_goes_to_the_running_backend_which_restarts_if_it_refuses(app, qtbot, caplog):
    qtbot.waitUntil(lambda: app.link.feed.connected, timeout=START_MS)
    before = app.pid
    # The simulated Angel One account logs in by itself: it takes no session from a login.
    assert app.window.take_session("angel", {"KITE_ACCESS_TOKEN": "not-for-angel"})
    qtbot.waitUntil(lambda: app.link.process.state == READY and app.pid != before, timeout=START_MS)
    refused = [r.getMessage() for r in caplog.records if "did not take" in r.getMessage()]
    assert refused == [
        "The backend did not take the new session: account 'angel' (Angel One) takes these "
        "settings from a login: none: it logs in by itself"
    ]
    assert "not-for-angel" not in caplog.text


def test_quit_stops_the_backend(app, qtbot):
    pid = app.pid
    assert pid is not None and psutil.pid_exists(pid)
    app.window.close()
    qtbot.waitUntil(app.serving.done, timeout=10_000)
    assert app.link.process.state == STOPPED
    assert not psutil.pid_exists(pid)
