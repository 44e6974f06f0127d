"""File > Log in to Kite, driven through the simulator's login page and the local callback."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from backend.brokers.zerodha.adapter import KiteAdapter, KiteCredentials
from backend.instruments.master import load_master
from backend.security.secret import Secret
from backend.simulator import ExchangeSimulator, SimulatorCredentials
from desktop.settings.file import current_values
from desktop.settings.kite_login import KiteLogin, KiteLoginDialog

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


@pytest.fixture
def kite(qt_event_loop, qtbot, tmp_path):
    """A simulated Kite whose app redirects to this machine, and settings that log in to it."""
    account = SimulatorCredentials(redirect_url=f"http://127.0.0.1:{free_port()}/kite/callback")
    simulator = ExchangeSimulator(load_master(), account, broker="zerodha")
    run(qt_event_loop, qtbot, simulator.start())
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(
            {
                "BROKER": "zerodha",
                "KITE_API_KEY": account.api_key,
                "KITE_API_SECRET": account.api_secret,
                "KITE_REDIRECT_URL": account.redirect_url,
                "KITE_LOGIN_URL": f"{simulator.rest_url}/connect/login",
                "KITE_API_URL": simulator.rest_url,
            }
        )
    )
    yield simulator, path
    run(qt_event_loop, qtbot, simulator.stop())


def browser(qt_event_loop, follow: bool = True):
    """Opens a page the way a browser does: a real HTTP client, following redirects."""
    visited: list[httpx.Response] = []

    def open_page(url: str) -> None:
        async def visit() -> None:
            async with httpx.AsyncClient(follow_redirects=follow) as client:
                visited.append(await client.get(url))

        qt_event_loop.create_task(visit())

    return open_page, visited


def works(qt_event_loop, qtbot, simulator: ExchangeSimulator, token: str) -> bool:
    """Whether the simulated Kite accepts a connection with ``token``."""
    credentials = KiteCredentials(Secret(simulator.credentials.api_key), Secret(token))
    run(qt_event_loop, qtbot, KiteAdapter.check(simulator.url, credentials))
    return True


def test_the_login_page_redirects_to_the_app_which_saves_the_days_token(kite, qt_event_loop, qtbot):
    simulator, path = kite
    open_page, visited = browser(qt_event_loop)
    login = KiteLogin(path, open_page)
    dialog = KiteLoginDialog(login)
    with qtbot.waitSignal(login.logged_in, timeout=WAIT_MS) as signal:
        dialog.begin()
    assert signal.args[0]  # the Kite user id
    qtbot.waitUntil(lambda: bool(visited), timeout=WAIT_MS)
    assert "FeedPool has your Kite login" in visited[0].text
    token = current_values(path)["KITE_ACCESS_TOKEN"]
    assert token and token != simulator.credentials.access_token
    assert works(qt_event_loop, qtbot, simulator, token)
    assert "Logged in to Kite" in dialog.status.text()


def test_a_pasted_redirect_url_logs_in(kite, qt_event_loop, qtbot):
    simulator, path = kite
    open_page, visited = browser(qt_event_loop, follow=False)  # the redirect is not followed
    login = KiteLogin(path, open_page)
    login.start()
    qtbot.waitUntil(lambda: bool(visited), timeout=WAIT_MS)
    redirect = visited[0].headers["location"]
    with qtbot.waitSignal(login.logged_in, timeout=WAIT_MS):
        login.paste(redirect)
    assert works(qt_event_loop, qtbot, simulator, current_values(path)["KITE_ACCESS_TOKEN"])


def test_a_pasted_address_without_a_token_is_refused_by_name(kite, qt_event_loop, qtbot):
    _, path = kite
    login = KiteLogin(path, lambda url: None)
    dialog = KiteLoginDialog(login)
    login.start()
    with qtbot.waitSignal(login.failed, timeout=WAIT_MS) as signal:
        login.paste("https://example.com/not-a-redirect")
    assert "request_token" in signal.args[0]
    assert "request_token" in dialog.status.text()
    assert "KITE_ACCESS_TOKEN" not in json.loads(path.read_text())
    dialog.reject()  # closing the dialog stops waiting for Kite
    qtbot.waitUntil(lambda: not login.running, timeout=WAIT_MS)
