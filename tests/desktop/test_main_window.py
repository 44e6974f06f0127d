"""The main window: panes in place, menus, hooks for the backend, saved and reset layout."""

from __future__ import annotations

import json
import logging

import msgspec
import pytest
from bus_messages import NOW, connection_stats, log_record, pool_stats
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QMessageBox

from backend.bus.messages import BackendHealth, ConnectionHealth
from backend.bus.publisher import ZmqPublisher
from backend.feed import HEALTH_TOPIC, LOG_TOPIC, POOL_TOPIC
from backend.instruments.symbol_lists import WatchEntry
from desktop.detail.pane import CHART_MIN_HEIGHT
from desktop.link.bus_monitor import BusMonitor
from desktop.main_window import GAUGES_MIN_HEIGHT, STATE_KEY, MainWindow
from desktop.preferences import APPLICATION, ORGANISATION
from desktop.tables.columns import column_index
from desktop.watchlist.columns import WATCHLIST_COLUMNS

POOL = pool_stats(
    connection_stats(1, symbols=1, ticks_per_second=1.0, last_tick_age_ms=20, peak_symbols=1),
    peak_symbols=1,
    utilisation_percent=0.03,
)


@pytest.fixture
def make_window(qtbot, tmp_path, small_master):
    def make() -> MainWindow:
        window = MainWindow(
            small_master,
            watchlist_path=tmp_path / "watchlist.json",
            settings_path=tmp_path / "settings.json",
        )
        qtbot.addWidget(window)
        return window

    return make


@pytest.fixture
def window(make_window) -> MainWindow:
    return make_window()


def menu_texts(window: MainWindow) -> dict[str, list[str]]:
    return {
        menu.title(): [a.text() for a in menu.actions() if not a.isSeparator()]
        for menu in (action.menu() for action in window.menuBar().actions())
    }


def test_panes_and_menus(window):
    assert window.watchlist_pane.parent() is window.centralWidget()
    assert window.alarm_banner.parent() is window.centralWidget()
    assert window.gauges_dock.widget() is window.gauges
    assert window.logs_dock.widget() is window.log_pane
    assert window.dockWidgetArea(window.gauges_dock) == Qt.DockWidgetArea.TopDockWidgetArea
    assert window.dockWidgetArea(window.logs_dock) == Qt.DockWidgetArea.BottomDockWidgetArea
    menus = menu_texts(window)
    assert menus["&File"] == [
        "&Import symbols...",
        "Export &watchlist...",
        "Export &logs...",
        "&Connect a strategy...",
        "&Settings...",
        "Lo&g in to Angel One...",
        "&Attach to a backend...",
        "Attach to a &saved backend",
        "&Quit",
    ]
    assert "&Reset layout" in menus["&View"]
    assert window.export_logs_action.shortcut() == QKeySequence("Ctrl+E")
    assert window.backend_label.text() == "Backend: not started"


def test_ctrl_e_opens_the_log_export_dialog_without_blocking(qtbot, window):
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.keyClick(window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(window.log_export_dialog.isVisible)


def test_settings_action_opens_the_dialog_and_relays_applied(qtbot, window, tmp_path):
    window.settings_action.trigger()
    assert window.settings_dialog.isVisible()
    window.settings_dialog.fields["WEBSOCKET_PORT"].setText("9100")
    with qtbot.waitSignal(window.settings_applied) as applied:
        window.settings_dialog.save()
    assert applied.args[0].WEBSOCKET_PORT == 9100
    assert json.loads((tmp_path / "settings.json").read_text())["WEBSOCKET_PORT"] == 9100


def test_bus_messages_reach_gauges_logs_and_status(qtbot, window):
    window.set_backend_state("ready")
    window.handle_bus_message(POOL_TOPIC, POOL)
    assert window.gauges.gauges[1].reading.headline == "1 / 1,000"

    window.handle_bus_message(LOG_TOPIC, log_record("[POOL] pool created"))
    qtbot.waitUntil(lambda: window.log_model.rowCount() == 1)
    assert window.log_model.entry(0).source == "pool"

    reconnecting = ConnectionHealth(connection=1, state="reconnecting", reason="closed", time=NOW)
    window.handle_bus_message(HEALTH_TOPIC, reconnecting)
    assert window.gauges.gauges[1].reading.badge == "reconnecting"
    down = BackendHealth(
        state="down",
        reason="stopped",
        time=NOW,
        ws=None,
        zmq="tcp://127.0.0.1:5555",
        tls_fingerprint=None,
        bus_public_key=None,
    )
    window.handle_bus_message(HEALTH_TOPIC, down)
    assert window.backend_label.text() == "Backend: down (stopped)"


def test_a_malformed_bus_message_is_an_error_line_and_the_view_keeps_its_state(
    qt_event_loop, qtbot, window, caplog
):
    """Over a real bus: the app's monitor names the topic and the field, the gauges keep the last
    good statistics, and the messages after it are shown."""
    window.set_backend_state("ready")
    publisher = ZmqPublisher(port=0)
    monitor = BusMonitor(window.handle_bus_message)
    monitor.start(publisher.endpoint)
    try:
        # A SUB socket joins asynchronously: publish until the window has shown one.
        qtbot.waitUntil(lambda: publisher.publish(POOL_TOPIC, POOL) or bool(window.gauges.gauges))
        malformed = msgspec.to_builtins(POOL)
        malformed["connections"][0].update(symbols="many", state="down")
        with caplog.at_level(logging.ERROR, logger="feedpool.desktop.bus"):
            publisher.publish(POOL_TOPIC, malformed)
            publisher.publish(LOG_TOPIC, log_record("[POOL] after the malformed one"))
            qtbot.waitUntil(lambda: window.log_model.rowCount() == 1)
    finally:
        monitor.stop()
        publisher.close()
    assert caplog.messages == [
        "Ignored a malformed SYS.POOL message: Expected `int`, got `str`"
        " - at `$.connections[0].symbols`"
    ]
    reading = window.gauges.gauges[1].reading
    assert (reading.headline, reading.badge) == ("1 / 1,000", "connected")
    assert window.log_model.entry(0).message == "[POOL] after the malformed one"


def test_feed_messages_update_the_watchlist(qtbot, window):
    window.watchlist_pane.import_pasted("NSE:SBIN")
    window.handle_feed_message(
        {
            "type": "subscribe",
            "status": "success",
            "subscriptions": [
                {
                    "symbol": "SBIN",
                    "exchange": "NSE",
                    "status": "success",
                    "mode": 2,
                    "connection": 1,
                }
            ],
        }
    )
    window.handle_feed_message(
        {
            "type": "market_data",
            "symbol": "SBIN",
            "exchange": "NSE",
            "mode": 2,
            "data": {"ltp": 801.45, "timestamp": 1764060000000},
        }
    )
    model = window.watchlist_model
    ltp = column_index(WATCHLIST_COLUMNS, "ltp")
    qtbot.waitUntil(lambda: model.data(model.index(0, ltp)) == "801.45")
    assert model.rows()[0].status == "subscribed" and model.rows()[0].connection == 1


def test_watchlist_is_saved_on_change_and_restored_at_start(make_window, tmp_path):
    first = make_window()
    first.watchlist_pane.import_pasted("NSE:SBIN\nNSE:TCS")
    first.watchlist_model.remove_keys([("SBIN", "NSE")])
    second = make_window()
    assert second.watchlist_model.entries() == [WatchEntry("TCS", "NSE")]


def test_import_and_export_through_the_file_menu(window, tmp_path, monkeypatch):
    source = tmp_path / "list.txt"
    source.write_text("NSE:INFY\nNSE:RELIANCE\n", encoding="utf-8")
    target = tmp_path / "out.csv"
    monkeypatch.setattr(
        "desktop.main_window.QFileDialog.getOpenFileNames", lambda *a, **k: ([str(source)], "")
    )
    monkeypatch.setattr(
        "desktop.main_window.QFileDialog.getSaveFileName", lambda *a, **k: (str(target), "")
    )
    window.import_action.trigger()
    assert [e.symbol for e in window.watchlist_model.entries()] == ["INFY", "RELIANCE"]
    window.export_watchlist_action.trigger()
    assert target.read_text(encoding="utf-8").splitlines()[1].startswith("INFY,NSE,Quote")
    assert "Exported 2 symbols" in window.statusBar().currentMessage()


def test_layout_is_saved_on_close_restored_and_reset(qtbot, make_window):
    first = make_window()
    first.show()
    first.resize(760, 580)
    first.logs_dock.hide()
    first.close()

    second = make_window()
    second.show()
    qtbot.waitExposed(second)
    assert (second.width(), second.height()) == (760, 580)
    assert second.logs_dock.isHidden()

    second.reset_layout_action.trigger()
    assert not second.logs_dock.isHidden()
    assert second.size() == second.default_size()
    assert QSettings(ORGANISATION, APPLICATION).value(STATE_KEY) is None


def test_a_modal_dialog_fails_the_test_instead_of_hanging_it():
    with pytest.raises(pytest.fail.Exception, match=r"blocking dialog: QMessageBox\.warning"):
        QMessageBox.warning(None, "title", "text")


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)])
def test_at_a_real_screens_size_nothing_a_trader_reads_is_cut(qtbot, qapp, window, size):
    window.watchlist_pane.import_typed("NSE:SBIN", "NSE", 3)
    window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    window.lay_out_docks()
    tabbed = bool(window.tabifiedDockWidgets(window.logs_dock))
    assert tabbed == (size[0] < 1920)  # the clients beside the logs where both fit
    if tabbed:
        window.clients_dock.raise_()
    view = window.watchlist_pane.view
    view.setCurrentIndex(view.proxy.index(0, 0))
    window.detail_pane.refresh()
    qapp.processEvents()

    clients = window.clients_pane.view
    assert clients.horizontalScrollBar().maximum() == 0  # every column in sight
    detail = window.detail_pane
    assert detail.chart.height() >= CHART_MIN_HEIGHT
    assert detail.book.verticalScrollBar().maximum() == 0
    assert window.gauges_dock.height() >= GAUGES_MIN_HEIGHT
    for table in (view, window.log_pane.view, clients):
        header = table.horizontalHeader()
        for section in range(header.count()):
            if header.isSectionHidden(section):  # the watchlist's account, with one account
                continue
            title = table.model().headerData(section, Qt.Orientation.Horizontal)
            assert header.sectionSize(section) > header.fontMetrics().horizontalAdvance(title)
    time_column = window.log_pane.view.columnWidth(0)
    assert time_column > window.log_pane.view.fontMetrics().horizontalAdvance("23:59:59.999")
