"""Alarms: the backend, a connection or the session down, said on a banner over the watchlist
until it is back."""

from __future__ import annotations

import pytest
from bus_messages import NOW, account_stats, connection_stats, pool_stats
from PySide6.QtCore import Qt

from backend.bus.messages import ConnectionHealth
from backend.feed import HEALTH_TOPIC, POOL_TOPIC
from desktop.alarms.board import AlarmBoard
from desktop.colours import STATE_COLOURS
from desktop.main_window import MainWindow

POOL = pool_stats(
    connection_stats(1, symbols=1000), connection_stats(2, symbols=400), utilisation_percent=46.7
)


@pytest.fixture
def window(qtbot, tmp_path, small_master) -> MainWindow:
    window = MainWindow(
        small_master,
        watchlist_path=tmp_path / "watchlist.json",
        settings_path=tmp_path / "settings.json",
    )
    qtbot.addWidget(window)
    window.show()
    window.set_backend_state("ready")
    window.handle_bus_message(POOL_TOPIC, POOL)
    return window


def test_nothing_wrong_no_alarm():
    board = AlarmBoard()
    board.set_backend_state("ready")
    board.update_pool(POOL)
    assert board.alarms() == []


def test_a_backend_that_is_not_serving_is_the_one_alarm():
    board = AlarmBoard()
    board.update_pool(pool_stats(connection_stats(1, state="reconnecting")))
    board.set_backend_state("restarting", "it crashed or was killed by signal 9")
    [alarm] = board.alarms()
    assert alarm.text == (
        "Backend restarting: it crashed or was killed by signal 9. No prices until it is back."
    )
    assert alarm.colour == STATE_COLOURS["restarting"]
    board.set_backend_state("starting")
    assert board.alarms()[0].text == "Backend starting. Prices update once it serves."
    board.set_backend_state("ready")
    assert board.alarms() == []  # the old pool's reconnecting connection went with it


def test_the_banner_shows_a_dropped_connection_until_it_is_back(qtbot, window):
    banner = window.alarm_banner
    assert banner.isHidden()
    dropped = ConnectionHealth(
        connection=2, state="reconnecting", reason="connection lost", time=NOW
    )
    window.handle_bus_message(HEALTH_TOPIC, dropped)

    assert banner.isVisible()
    assert [alarm.text for alarm in banner.alarms] == [
        "Connection 2 reconnecting (connection lost): its 400 symbols do not tick until it is back."
    ]
    assert "Connection 2 reconnecting" in banner.label.text()
    assert not banner.log_in_button.isVisibleTo(banner)
    window.handle_bus_message(POOL_TOPIC, POOL)  # newer statistics: both connected
    assert banner.isHidden()
    window.handle_bus_message(HEALTH_TOPIC, dropped)
    back = ConnectionHealth(connection=2, state="connected", reason="", time=NOW)
    window.handle_bus_message(HEALTH_TOPIC, back)
    assert banner.isHidden()


def test_an_ended_session_asks_for_a_login_on_the_banner(qtbot, window):
    expired = pool_stats(
        connection_stats(1, symbols=1000, state="session_expired", reason="Invalid session"),
        connection_stats(2, symbols=400, state="session_expired", reason="Invalid session"),
    )
    window.handle_bus_message(POOL_TOPIC, expired)
    banner = window.alarm_banner
    [alarm] = banner.alarms
    assert alarm.text.startswith("The broker ended the session (Invalid session): log in again")
    assert banner.log_in_button.isVisibleTo(banner)
    with qtbot.waitSignal(banner.log_in_requested, timeout=1000):
        qtbot.mouseClick(banner.log_in_button, Qt.MouseButton.LeftButton)
    window.handle_bus_message(POOL_TOPIC, POOL)
    assert banner.isHidden()


def test_the_backend_restarting_raises_the_banner_and_ready_clears_it(window):
    window.set_backend_state("restarting", "it exited with status 1; starting again in 0.5 s")
    banner = window.alarm_banner
    assert banner.isVisible()
    assert banner.alarms[0].text.startswith("Backend restarting: it exited with status 1")
    assert window.gauges.total.reading.badge == "backend restarting"
    window.set_backend_state("ready")
    assert banner.isHidden()


def test_with_several_accounts_the_alarm_names_the_account_and_what_still_ticks(window, qtbot):
    expired = "Zerodha Kite ended the session; log in again"
    moved = pool_stats(
        connection_stats(1, account="angel", symbols=1000),
        connection_stats(4, account="kite", state="session_expired", reason=expired),
        connection_stats(5, account="kite", symbols=200, state="reconnecting", reason="refused"),
        accounts=[
            account_stats("angel", "angel", symbols=1000, borrowed=800),
            account_stats(
                "kite", "zerodha", serving=False, session_problem=expired, symbols=200, lent=800
            ),
        ],
    )
    window.handle_bus_message(POOL_TOPIC, moved)
    banner = window.alarm_banner
    assert [alarm.text for alarm in banner.alarms] == [
        f"The broker ended account kite's session ({expired}): log in again. 800 of its "
        "symbols tick through the other accounts meanwhile; 200 wait for it.",
        "Connection 5 reconnecting (refused): its 200 symbols do not tick until it is back.",
    ]  # connection 4 holds nothing: its symbols moved, nothing waits on it
    with qtbot.waitSignal(banner.log_in_requested) as asked:
        banner.log_in_button.click()
    assert asked.args == ["kite"]
