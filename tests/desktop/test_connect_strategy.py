"""Connecting a strategy, and the alarms, on the real backend the app runs.

The connect dialog's code is run as pasted (with OpenAlgo's Python SDK, in a process of its own)
against the backend; then the backend is killed, and the gauges and the banner say so until it is
back.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLineEdit

from backend.instruments.master import load_master
from desktop.app import link_window, serve
from desktop.link.process import READY
from desktop.logs.handler import LogModelHandler
from desktop.main_window import MainWindow
from desktop.strategy.access import ApiAccess
from desktop.strategy.dialog import ConnectStrategyDialog

START_MS = 20_000
API_KEY = "strategy-test-key-0123456789"
XDG_NAMES = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")


def test_before_the_backend_serves_the_dialog_says_so(qtbot):
    dialog = ConnectStrategyDialog()
    qtbot.addWidget(dialog)
    dialog.open()
    assert dialog.status_label.isVisible()
    assert not dialog.copy_key_button.isEnabled() and dialog.code_view.toPlainText() == ""
    dialog.set_access(ApiAccess("wss://10.0.0.5:8765", API_KEY, pinned=True))
    assert not dialog.status_label.isVisible()
    assert dialog.pinned_label.isVisible()


@pytest.fixture(scope="module")
def app(qt_event_loop, qapp, tmp_path_factory):
    """The app running its backend in dirs of its own; the ready lines it printed."""
    home = tmp_path_factory.mktemp("strategy-home")
    dirs = {name: str(home / name.lower()) for name in XDG_NAMES}
    environment = {
        **dirs,
        "WEBSOCKET_PORT": "0",
        "ZMQ_PORT": "0",
        "SIMULATOR_TICKS_PER_SECOND": "5",
        "FEEDPOOL_API_KEY": API_KEY,
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in dirs.items():
            patch.setenv(name, value)
        for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
            QSettings.setPath(fmt, QSettings.Scope.UserScope, str(home / "qsettings"))
        window = MainWindow(load_master())
        handler = LogModelHandler(window.log_model)
        logging.getLogger().addHandler(handler)
        window.show()
        link = link_window(window, environment)
        readies = []
        link.process.ready.connect(readies.append)
        serving = qt_event_loop.create_task(serve(window, link))
        yield window, link, readies
        window.close()
        deadline = time.monotonic() + 10
        while not serving.done() and time.monotonic() < deadline:
            qapp.processEvents()
        logging.getLogger().removeHandler(handler)


def test_the_dialog_shows_the_url_and_the_key_masked_until_asked(app, qtbot):
    window, link, readies = app
    qtbot.waitUntil(lambda: link.process.state == READY, timeout=START_MS)
    window.strategy_action.trigger()
    dialog = window.strategy_dialog
    assert dialog.isVisible()
    assert dialog.url_edit.text() == readies[-1].ws
    assert dialog.key_edit.echoMode() == QLineEdit.EchoMode.Password
    assert API_KEY not in dialog.code_view.toPlainText()
    dialog.copy_key_button.click()
    assert QGuiApplication.clipboard().text() == API_KEY

    qtbot.mouseClick(dialog.show_key_button, Qt.MouseButton.LeftButton)
    assert dialog.key_edit.echoMode() == QLineEdit.EchoMode.Normal
    assert f'api_key="{API_KEY}"' in dialog.code_view.toPlainText()
    dialog.reject()
    dialog.open()
    assert dialog.key_edit.echoMode() == QLineEdit.EchoMode.Password


def test_the_code_runs_as_pasted_and_streams_ticks(app, qtbot, tmp_path):
    window, link, _ = app
    qtbot.waitUntil(lambda: link.process.state == READY, timeout=START_MS)
    dialog = window.strategy_dialog
    dialog.copy_code_button.click()
    script = tmp_path / "strategy.py"
    script.write_text(QGuiApplication.clipboard().text(), encoding="utf-8")
    output = tmp_path / "strategy.out"

    def ticks() -> list[str]:
        return [line for line in output.read_text().splitlines() if line.startswith("NSE SBIN ")]

    with output.open("w") as sink:
        strategy = subprocess.Popen(
            [sys.executable, str(script)], stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        qtbot.waitUntil(lambda: bool(ticks()) or strategy.poll() is not None, timeout=START_MS)
        assert ticks(), f"the strategy ended ({strategy.returncode}): {output.read_text()}"
        assert float(ticks()[0].split()[2]) > 0
        # The strategy shows among the API's clients, holding what the code subscribed.
        clients = window.clients_pane.model
        qtbot.waitUntil(
            lambda: any(row.stats.symbols == [("SBIN", "NSE", 1)] for row in clients.rows()),
            timeout=START_MS,
        )
    finally:
        strategy.terminate()
        strategy.wait(10)


def test_a_killed_backend_shows_on_the_gauges_and_the_banner_until_it_is_back(app, qtbot):
    window, link, readies = app
    qtbot.waitUntil(lambda: link.process.state == READY, timeout=START_MS)
    qtbot.waitUntil(lambda: window.gauges.total.reading.badge.endswith("used"), timeout=START_MS)
    assert window.alarm_banner.isHidden()
    before = len(readies)
    os.kill(link.process.pid, signal.SIGKILL)

    qtbot.waitUntil(lambda: window.gauges.total.reading.badge == "backend restarting")
    assert window.alarm_banner.isVisible()
    assert window.alarm_banner.alarms[0].text.startswith(
        "Backend restarting: it crashed or was killed by signal 9"
    )

    qtbot.waitUntil(
        lambda: len(readies) > before and window.alarm_banner.isHidden(), timeout=START_MS
    )
    qtbot.waitUntil(lambda: window.gauges.total.reading.badge.endswith("used"), timeout=START_MS)
    assert window.strategy_dialog.url_edit.text() == readies[-1].ws  # the new run's port
