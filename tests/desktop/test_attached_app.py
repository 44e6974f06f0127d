"""Two apps attached to one backend that the test runs, as desktops on other machines would be.

The backend is ``python -m backend`` on OS-chosen ports; both apps run on the test's qasync loop,
each with its own watchlist, and neither starts, restarts or stops a backend. The tests follow a
session: both see one pool and tick, applied settings restart nothing, a backend restarted on
the same ports is dialled again, and quitting leaves the backend running.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import psutil
import pytest
from attached import WAIT_MS, Backend, attached_app, finish, window_in
from proxy_client import API_KEY
from PySide6.QtCore import QSettings
from relay import Relay

from backend.instruments.symbol_lists import WatchEntry
from backend.runtime.settings import Settings
from desktop.app import link_window
from desktop.link import feed_client
from desktop.link.attachment import make_attachment
from desktop.link.process import READY

WATCHLISTS = (
    [WatchEntry("SBIN", "NSE", 1), WatchEntry("TCS", "NSE", 2)],
    [WatchEntry("TCS", "NSE", 2), WatchEntry("INFY", "NSE", 3)],
)


@pytest.fixture(scope="module")
def backend(qt_event_loop, qapp, tmp_path_factory):
    backend = Backend(qt_event_loop, qapp, tmp_path_factory.mktemp("backend-home"))
    yield backend
    backend.stop()


@pytest.fixture(scope="module")
def attachment(backend):
    return make_attachment(
        {
            "name": "test backend",
            "api_url": backend.ready["ws"],
            "bus": backend.ready["zmq"],
            "api_key": API_KEY,
        }
    )


@pytest.fixture(scope="module")
def apps(attachment, qt_event_loop, qapp, tmp_path_factory):
    """Two apps attached to ``backend``, each with its watchlist; closed at the end."""
    home = tmp_path_factory.mktemp("apps-home")
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(home / "qsettings"))
    apps = [
        attached_app(window_in(home, f"app-{number}", entries), attachment, qt_event_loop)
        for number, entries in enumerate(WATCHLISTS)
    ]
    yield apps
    for app in apps:
        app.close(qapp)


#: This process's children before the module's first test: what earlier tests in the same
#: process left running for good (the multiprocessing resource tracker of a simulator child).
EARLIER_CHILDREN: set[int] = set()


@pytest.fixture(scope="module", autouse=True)
def earlier_children() -> None:
    EARLIER_CHILDREN.update(child.pid for child in psutil.Process().children())


def children_pids() -> set[int]:
    """This process's children started since the module's first test."""
    return {child.pid for child in psutil.Process().children()} - EARLIER_CHILDREN


def test_two_attached_apps_see_one_pool_and_tick(apps, backend, qtbot):
    started_ms = time.time() * 1000
    for app in apps:
        qtbot.waitUntil(lambda app=app: app.ticked_since(started_ms), timeout=WAIT_MS)
    # SYS.POOL, read by each app: three symbols (TCS is held by both) on one connection.
    for app in apps:
        qtbot.waitUntil(lambda app=app: app.connections() == [(1, 3)], timeout=WAIT_MS)
        assert app.window.gauges.total.reading.value == "3"
        assert app.link.process is None
        assert app.window.attached_label.text() == f"attached to {backend.ready['ws']}"
        assert app.window.backend_label.text() == "Backend: connected"
    # Each is a client like any other, and knows itself among the two.
    for app in apps:
        pane = app.window.clients_pane
        qtbot.waitUntil(
            lambda pane=pane: sorted(row.own for row in pane.model.rows()) == [False, True],
            timeout=WAIT_MS,
        )
    assert children_pids() == {backend.pid}


def test_applied_settings_restart_nothing(apps, backend, qtbot):
    before = backend.pid
    apps[0].window.settings_applied.emit(Settings())
    assert backend.process.process.returncode is None
    assert children_pids() == {before}
    assert apps[0].link.feed.connected


def test_a_backend_restarted_on_its_ports_is_dialled_again(apps, backend, qtbot):
    states: list[str] = []
    apps[0].link.state_changed.connect(lambda state, detail: states.append(state))
    backend.restart()
    restarted_ms = time.time() * 1000
    for app in apps:
        qtbot.waitUntil(lambda app=app: app.ticked_since(restarted_ms), timeout=WAIT_MS)
        qtbot.waitUntil(lambda app=app: app.pooled_since(restarted_ms), timeout=WAIT_MS)
    assert "reconnecting" in states and states[-1] == "connected"
    assert children_pids() == {backend.pid}


@pytest.fixture
def relayed(backend, qt_event_loop, qapp, tmp_path, monkeypatch):
    """An app attached through a relay that can hold the backend's bytes, pinging quickly."""
    monkeypatch.setattr(feed_client, "PING_SECONDS", 0.2)
    monkeypatch.setattr(feed_client, "PONG_TIMEOUT", 0.5)
    relay = Relay("127.0.0.1", urlsplit(backend.ready["ws"]).port)
    finish(qapp, qt_event_loop.create_task(relay.start()))
    through_relay = make_attachment(
        {
            "name": "through a relay",
            "api_url": f"ws://127.0.0.1:{relay.port}",
            "bus": backend.ready["zmq"],
            "api_key": API_KEY,
        }
    )
    window = window_in(tmp_path, "relayed", WATCHLISTS[0][:1])
    app = attached_app(window, through_relay, qt_event_loop)
    yield app, relay
    app.close(qapp)
    finish(qapp, qt_event_loop.create_task(relay.stop()))


def test_a_network_that_stalls_without_closing_is_found_and_dialled_again(relayed, qtbot):
    app, relay = relayed
    states: list[str] = []
    app.link.state_changed.connect(lambda state, detail: states.append(state))
    qtbot.waitUntil(lambda: app.link.feed.connected, timeout=WAIT_MS)
    relay.hold()  # the backend's bytes stop coming, and the connection stays open
    qtbot.waitUntil(lambda: "reconnecting" in states, timeout=5_000)
    relay.release()
    released_ms = time.time() * 1000
    qtbot.waitUntil(lambda: app.ticked_since(released_ms), timeout=WAIT_MS)
    assert states[-1] == "connected"


def test_quitting_leaves_the_backend_running(apps, backend, qtbot):
    apps[0].window.close()
    qtbot.waitUntil(apps[0].serving.done, timeout=WAIT_MS)
    assert backend.process.process.returncode is None
    assert psutil.pid_exists(backend.pid)
    still_ms = time.time() * 1000
    qtbot.waitUntil(lambda: apps[1].ticked_since(still_ms), timeout=WAIT_MS)


def test_attaching_from_the_menu_stops_the_apps_own_backend_first(
    attachment, backend, qt_event_loop, qtbot, tmp_path
):
    window = window_in(tmp_path, "local", WATCHLISTS[0][:1])
    qtbot.addWidget(window)
    link = link_window(window, {**backend.env, "WEBSOCKET_PORT": "0", "ZMQ_PORT": "0"})
    link.start()
    qtbot.waitUntil(lambda: link.process.state == READY, timeout=WAIT_MS)
    own = link.process.pid
    window.attach_requested.emit(attachment)
    attached_ms = time.time() * 1000
    qtbot.waitUntil(lambda: not psutil.pid_exists(own), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: link.feed.connected, timeout=WAIT_MS)
    rows = window.watchlist_model.rows()
    qtbot.waitUntil(lambda: rows[0].last_tick and rows[0].last_tick > attached_ms, timeout=WAIT_MS)
    assert link.process is None
    assert window.attached_label.text() == f"attached to {backend.ready['ws']}"
    assert children_pids() == {backend.pid}
    stopping = qt_event_loop.create_task(link.stop())
    qtbot.waitUntil(stopping.done)
