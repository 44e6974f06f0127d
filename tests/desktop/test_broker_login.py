"""File > Log in to <broker>: Kite's browser login driven through the simulator's Kite login page
and token exchange, the redirect caught on this machine or pasted."""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QDesktopServices

from backend.brokers.zerodha.adapter import KiteAdapter, KiteCredentials
from backend.security import keychain
from backend.security.secret import Secret
from backend.simulator import ExchangeSimulator, SimulatorCredentials
from desktop.main_window import MainWindow
from desktop.settings import broker_login
from desktop.settings.broker_login import BrokerLogin, BrokerLoginDialog
from desktop.settings.file import current_values

WAIT_MS = 15_000


def run(qt_event_loop, qtbot, coroutine):
    """Run ``coroutine`` on the app's loop (which stays the running loop) until it is done."""
    task = qt_event_loop.create_task(coroutine)
    qtbot.waitUntil(task.done, timeout=WAIT_MS)
    return task.result()


def free_port() -> int:
    """A port the OS has just given out and taken back, for the Kite app's redirect."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class SimulatedKite:
    """A simulated Kite whose app redirects to :attr:`redirect_port` of this machine."""

    simulator: ExchangeSimulator
    folder: Path

    @property
    def redirect_port(self) -> int:
        return urlsplit(self.simulator.credentials.redirect_url).port

    def settings(self, **changes: str) -> Path:
        """Writes settings that log in to it, with ``changes``; their path."""
        account = self.simulator.credentials
        values = {
            "BROKER": "zerodha",
            "KITE_API_KEY": account.api_key,
            "KITE_API_SECRET": account.api_secret,
            "KITE_REDIRECT_URL": account.redirect_url,
            "KITE_LOGIN_URL": f"{self.simulator.rest_url}/connect/login",
            "KITE_API_URL": self.simulator.rest_url,
            **changes,
        }
        path = self.folder / "settings.json"
        path.write_text(json.dumps(values))
        return path


@pytest.fixture
def kite(qt_event_loop, qtbot, small_master, tmp_path):
    account = SimulatorCredentials(redirect_url=f"http://127.0.0.1:{free_port()}/kite/callback")
    simulator = ExchangeSimulator(small_master, account, broker="zerodha")
    run(qt_event_loop, qtbot, simulator.start())
    yield SimulatedKite(simulator, tmp_path)
    run(qt_event_loop, qtbot, simulator.stop())


def browser(qt_event_loop, follow: bool = True):
    """Opens a page the way a browser does: a real HTTP client, following redirects or not."""
    visited: list[httpx.Response] = []

    def open_page(url: str) -> None:
        async def visit() -> None:
            async with httpx.AsyncClient(follow_redirects=follow) as client:
                visited.append(await client.get(url))

        qt_event_loop.create_task(visit())

    return open_page, visited


def works(qt_event_loop, qtbot, kite: SimulatedKite, token: str) -> bool:
    """Whether the simulated Kite accepts a connection with ``token``."""
    simulator = kite.simulator
    credentials = KiteCredentials(Secret(simulator.credentials.api_key), Secret(token))
    run(qt_event_loop, qtbot, KiteAdapter.check(simulator.url, credentials))
    return True


@pytest.mark.usefixtures("memory_keyring")
def test_the_redirect_caught_on_this_machine_logs_in_and_restarts_the_backend(
    kite, qt_event_loop, qtbot, monkeypatch, caplog
):
    path = kite.settings()
    open_page, visited = browser(qt_event_loop)
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: open_page(url.toString()))
    window = MainWindow(settings_path=path, watchlist_path=path.with_name("watchlist.json"))
    qtbot.addWidget(window)
    dialog = window.broker_login_dialog
    caplog.set_level(logging.INFO)
    with qtbot.waitSignal(window.settings_applied, timeout=WAIT_MS) as applied:
        window.broker_login_action.trigger()
        assert dialog.isVisible() and dialog.windowTitle() == "Log in to Zerodha Kite"
    token = applied.args[0].KITE_ACCESS_TOKEN.reveal()
    assert token and token != kite.simulator.credentials.access_token
    assert keychain.read(["KITE_ACCESS_TOKEN"]) == {"KITE_ACCESS_TOKEN": token}
    assert "KITE_ACCESS_TOKEN" not in json.loads(path.read_text())
    assert works(qt_event_loop, qtbot, kite, token)
    assert "You may close this tab" in visited[0].text
    assert not dialog.isVisible()
    assert window.statusBar().currentMessage() == (
        "Logged in to Zerodha Kite as FEEDPOOL; restarting the backend"
    )
    # The app's log lines (not those of the test's browser, which logs the addresses it visits).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "httpx")
    assert "Waiting for Zerodha Kite's login" in logged
    request_token = visited[0].url.params["request_token"]
    for secret in (token, request_token, kite.simulator.credentials.api_key):
        assert secret not in logged


def test_a_pasted_address_logs_in_after_one_that_did_not(kite, qt_event_loop, qtbot):
    # The Kite app's redirect URL is not on this machine: the trader pastes where Kite went.
    path = kite.settings(KITE_REDIRECT_URL="https://example.com/kite/callback")
    open_page, visited = browser(qt_event_loop, follow=False)
    login = BrokerLogin(path, open_page)
    dialog = BrokerLoginDialog(login)
    qtbot.addWidget(dialog)
    dialog.begin()
    assert "paste below the address Zerodha Kite sends the browser to" in dialog.status.text()
    qtbot.waitUntil(lambda: bool(visited), timeout=WAIT_MS)
    with qtbot.waitSignal(login.refused, timeout=WAIT_MS):
        qtbot.keyClicks(dialog.pasted, "https://example.com/kite/callback?status=cancelled")
        qtbot.keyClick(dialog.pasted, Qt.Key.Key_Return)
    assert "request_token" in dialog.error.text() and login.running
    with qtbot.waitSignal(login.logged_in, timeout=WAIT_MS) as logged_in:
        dialog.pasted.setText(visited[0].headers["location"])
        qtbot.keyClick(dialog.pasted, Qt.Key.Key_Return)
    assert logged_in.args == ["FEEDPOOL"]
    assert dialog.status.text() == "Logged in to Zerodha Kite as FEEDPOOL."
    assert works(qt_event_loop, qtbot, kite, current_values(path)["KITE_ACCESS_TOKEN"])


def test_try_again_starts_over_and_cancel_frees_the_redirect_port(kite, qt_event_loop, qtbot):
    opened: list[str] = []
    login = BrokerLogin(kite.settings(), opened.append)  # a browser nobody logs in with
    dialog = BrokerLoginDialog(login)
    qtbot.addWidget(dialog)
    port = kite.redirect_port
    dialog.begin()
    qtbot.waitUntil(lambda: len(opened) == 1, timeout=WAIT_MS)
    assert listening(port)
    qtbot.mouseClick(dialog.try_again, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(opened) == 2, timeout=WAIT_MS)  # listening on the port again
    assert listening(port) and login.running
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    qtbot.waitUntil(lambda: not login.running, timeout=WAIT_MS)
    assert not listening(port)
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))


def test_missing_settings_are_named_and_nothing_opens(kite, qtbot):
    opened: list[str] = []
    login = BrokerLogin(kite.settings(KITE_API_KEY="", KITE_API_SECRET=""), opened.append)
    dialog = BrokerLoginDialog(login)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(login.failed) as failed:
        dialog.begin()
    assert failed.args == ["Set Zerodha Kite's API key and API secret in Settings first"]
    assert dialog.status.text() == "Not logged in to Zerodha Kite. Try again, or Cancel."
    assert dialog.error.text() == failed.args[0]
    assert not login.running and opened == [] and not dialog.pasted.isEnabled()


def test_a_wrong_api_secret_ends_the_login_naming_the_setting(kite, qt_event_loop, qtbot):
    open_page, _ = browser(qt_event_loop)
    login = BrokerLogin(kite.settings(KITE_API_SECRET="not-the-secret"), open_page)
    with qtbot.waitSignal(login.failed, timeout=WAIT_MS) as failed:
        login.start()
    assert "check KITE_API_SECRET" in failed.args[0]
    assert "not-the-secret" not in failed.args[0]
    qtbot.waitUntil(lambda: not login.running, timeout=WAIT_MS)


def test_a_login_nobody_finishes_stops_waiting(kite, qt_event_loop, qtbot, monkeypatch):
    monkeypatch.setattr(broker_login, "LOGIN_SECONDS", 0.2)
    login = BrokerLogin(kite.settings(), lambda url: None)
    with qtbot.waitSignal(login.failed, timeout=WAIT_MS) as failed:
        login.start()
    assert failed.args[0].startswith("no login came back from Zerodha Kite in")


def test_a_taken_redirect_port_is_named(kite, qtbot):
    with socket.socket() as taken:
        port = kite.redirect_port
        taken.bind(("127.0.0.1", port))
        taken.listen()
        login = BrokerLogin(kite.settings(), lambda url: None)
        with qtbot.waitSignal(login.failed, timeout=WAIT_MS) as failed:
            login.start()
    assert failed.args[0].startswith(f"cannot listen on 127.0.0.1:{port}")


@pytest.mark.parametrize(
    ("saved", "text", "enabled"),
    [
        ({}, "Lo&g in to Angel One...", False),
        # The simulator playing Kite logs in by itself, whatever Kite settings there are.
        (
            {"SIMULATOR_BROKER": "zerodha", "KITE_API_KEY": "k", "KITE_API_SECRET": "s"},
            "Lo&g in to Zerodha Kite...",
            False,
        ),
        ({"BROKER": "angel"}, "Lo&g in to Angel One...", False),
        ({"BROKER": "zerodha", "KITE_API_KEY": "k"}, "Lo&g in to Zerodha Kite...", True),
    ],
)
def test_the_login_action_names_the_broker_and_is_offered_only_for_a_browser_login(
    qtbot, tmp_path, saved, text, enabled
):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(saved))
    window = MainWindow(settings_path=path, watchlist_path=tmp_path / "watchlist.json")
    qtbot.addWidget(window)
    assert window.broker_login_action.text() == text
    assert window.broker_login_action.isEnabled() is enabled


def test_the_login_action_follows_the_settings_and_log_in_again_opens_the_login(qtbot, tmp_path):
    window = MainWindow(
        settings_path=tmp_path / "settings.json", watchlist_path=tmp_path / "watchlist.json"
    )
    qtbot.addWidget(window)
    assert not window.broker_login_action.isEnabled()
    window.log_in()  # the simulator's account: its settings
    assert window.settings_dialog.isVisible() and not window.broker_login_dialog.isVisible()
    dialog = window.settings_dialog
    dialog.broker_combo.setCurrentIndex(dialog.broker_combo.findData("zerodha"))
    dialog.fields["KITE_API_KEY"].setText("kite-key")
    dialog.fields["KITE_ACCESS_TOKEN"].setText("yesterdays-token")
    assert dialog.save()
    assert window.broker_login_action.isEnabled()
    assert window.broker_login_action.text() == "Lo&g in to Zerodha Kite..."
    window.log_in()
    assert window.broker_login_dialog.isVisible()
    assert window.broker_login_dialog.error.text() == (
        "Set Zerodha Kite's API secret in Settings first"
    )


@pytest.mark.usefixtures("memory_keyring")
def test_an_accounts_login_saves_its_token_under_its_name(kite, qt_event_loop, qtbot, monkeypatch):
    account = kite.simulator.credentials
    kite_settings = {
        "broker": "zerodha",
        "KITE_API_KEY": account.api_key,
        "KITE_API_SECRET": account.api_secret,
        "KITE_REDIRECT_URL": account.redirect_url,
        "KITE_LOGIN_URL": f"{kite.simulator.rest_url}/connect/login",
        "KITE_API_URL": kite.simulator.rest_url,
    }
    accounts = [{"name": "kite-a", **kite_settings}, {"name": "kite-b", **kite_settings}]
    path = kite.folder / "settings.json"
    path.write_text(json.dumps({"BROKER": "accounts", "ACCOUNTS": accounts}))
    open_page, _ = browser(qt_event_loop)
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: open_page(url.toString()))
    window = MainWindow(settings_path=path, watchlist_path=path.with_name("watchlist.json"))
    qtbot.addWidget(window)
    assert window.broker_login_action.text() == "Lo&g in to kite-a (Zerodha Kite)..."
    with qtbot.waitSignal(window.settings_applied, timeout=WAIT_MS) as applied:
        window.gauges.log_in_requested.emit("kite-b")  # its gauges' Log in again
    assert window.broker_login.account == "kite-b"
    token = applied.args[0].accounts[1].values["KITE_ACCESS_TOKEN"].reveal()
    assert keychain.read(["kite-b/KITE_ACCESS_TOKEN", "kite-a/KITE_ACCESS_TOKEN"]) == {
        "kite-b/KITE_ACCESS_TOKEN": token
    }
    saved = json.loads(path.read_text())
    assert [entry["name"] for entry in saved["ACCOUNTS"]] == ["kite-a", "kite-b"]
    assert token not in path.read_text() and account.api_secret not in path.read_text()
    assert not applied.args[0].accounts[0].values["KITE_ACCESS_TOKEN"]
    assert works(qt_event_loop, qtbot, kite, token)
