"""Apps on a secured backend (``WEBSOCKET_TLS=auto``, ``BUS_CURVE=on``): attached over wss://
with the pinned fingerprint and a CURVE bus with a key from ``--allow-bus-client``, refused with
the reason when the certificate or the key is not the right one (and let onto the bus once the
key is allowed), and running such a backend of their own."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import pytest
import zmq.auth
from attached import WAIT_MS, Backend, attached_app, finish, user_dirs, window_in
from backend_process import allow_bus_client
from proxy_client import API_KEY

from backend.instruments.symbol_lists import WatchEntry
from desktop.app import link_window
from desktop.link.attachment import make_attachment
from desktop.link.backend_link import CONNECTING
from desktop.link.bus_monitor import REFUSED
from desktop.link.feed_client import FAILED
from desktop.link.process import READY

SECURED = {"WEBSOCKET_TLS": "auto", "BUS_CURVE": "on"}
WATCHLIST = [WatchEntry("SBIN", "NSE", 1), WatchEntry("NIFTY", "NSE_INDEX", 2)]
WRONG_PIN = "0" * 64


@pytest.fixture(scope="module")
def backend(qt_event_loop, qapp, tmp_path_factory):
    """The secured backend, with the bus client ``desk`` allowed before it started."""
    home = tmp_path_factory.mktemp("secured-home")
    allowing = qt_event_loop.create_task(allow_bus_client("desk", **user_dirs(home)))
    status, desk, _ = finish(qapp, allowing)
    assert status == 0, desk
    backend = Backend(qt_event_loop, qapp, home, **SECURED)
    backend.desk = desk
    yield backend
    backend.stop()


@pytest.fixture
def attach(backend, qt_event_loop, qapp, tmp_path):
    """An app attached to the backend's ready line with ``fields`` changed; quit at the end."""
    started = []

    def make(**fields: str):
        ready = backend.ready
        attachment = make_attachment(
            {
                "name": "secured",
                "api_url": ready["ws"],
                "bus": ready["zmq"],
                "api_key": API_KEY,
                "fingerprint": ready["tls_fingerprint"],
                "bus_server_key": ready["bus_public_key"],
                "bus_client_key_file": backend.desk["secret_key_file"],
                **fields,
            }
        )
        app = attached_app(window_in(tmp_path, "app", WATCHLIST), attachment, qt_event_loop)
        started.append(app)
        return app

    yield make
    for app in started:
        app.close(qapp)


def test_attached_over_wss_and_curve_the_pool_and_ticks_arrive(backend, attach, qtbot):
    assert backend.ready["ws"].startswith("wss://")
    started_ms = time.time() * 1000
    app = attach()
    qtbot.waitUntil(lambda: app.pooled_since(started_ms), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: app.ticked_since(started_ms), timeout=WAIT_MS)
    assert app.window.backend_label.text() == "Backend: connected"


def test_a_wrong_fingerprint_stops_the_feed_with_the_reason_and_no_retry(backend, attach, qtbot):
    states: list[str] = []
    app = attach(fingerprint=WRONG_PIN)
    app.link.state_changed.connect(lambda state, detail: states.append(state))
    qtbot.waitUntil(lambda: app.link.feed.refusal != "", timeout=WAIT_MS)
    assert app.window.backend_label.text() == (
        f"Backend: failed (its certificate is not trusted: the server's TLS certificate has"
        f" SHA-256 fingerprint {backend.ready['tls_fingerprint']}, not the pinned {WRONG_PIN}:"
        " it is not the backend you trust, or its certificate has changed)"
    )
    assert API_KEY not in app.window.backend_label.text()
    # The bus, trusted by its own key, still brings SYS.POOL each second; over two of them the
    # feed, had it retried (first after 0.5 s), would have said so.
    failed_ms = time.time() * 1000
    qtbot.waitUntil(lambda: len([t for t in app.pools if t > failed_ms]) >= 2, timeout=WAIT_MS)
    assert states == [CONNECTING, FAILED]
    assert not app.link.feed.connected
    assert all(row.last_tick is None for row in app.window.watchlist_model.rows())


def test_a_bus_that_refuses_the_apps_key_says_so(attach, qtbot, tmp_path, caplog):
    _, unknown = zmq.auth.create_certificates(tmp_path, "stranger")
    started_ms = time.time() * 1000
    with caplog.at_level(logging.ERROR, logger="feedpool.desktop.bus"):
        app = attach(bus_client_key_file=str(unknown))
        qtbot.waitUntil(lambda: not app.window.bus_label.isHidden(), timeout=WAIT_MS)
    assert app.window.bus_label.text() == REFUSED[0].upper() + REFUSED[1:]
    assert REFUSED in caplog.text
    qtbot.waitUntil(lambda: app.ticked_since(started_ms), timeout=WAIT_MS)  # the feed still is
    assert not app.pools


def test_a_key_allowed_after_the_bus_refused_it_lets_the_app_in(backend, attach, qtbot, tmp_path):
    public, secret = zmq.auth.create_certificates(tmp_path, "latecomer")
    app = attach(bus_client_key_file=str(secret))
    qtbot.waitUntil(lambda: app.link.bus.refusal == REFUSED, timeout=WAIT_MS)
    clients = Path(user_dirs(backend.home)["XDG_CONFIG_HOME"], "FeedPool", "bus", "clients")
    shutil.copyfile(public, clients / Path(public).name)  # as --allow-bus-client does
    qtbot.waitUntil(lambda: bool(app.pools), timeout=WAIT_MS)
    assert app.link.bus.refusal == ""
    assert app.window.bus_label.isHidden()


def test_the_apps_own_secured_backend_is_trusted_by_its_ready_line(qt_event_loop, qtbot, tmp_path):
    # The backend shares the app's user dirs (the test's), where the app allows its bus key.
    window = window_in(tmp_path, "own", WATCHLIST)
    qtbot.addWidget(window)
    link = link_window(window, {**SECURED, "WEBSOCKET_PORT": "0", "ZMQ_PORT": "0"})
    link.start()
    try:
        qtbot.waitUntil(lambda: link.process.state == READY, timeout=WAIT_MS)
        assert window.backend_label.text().startswith("Backend: ready (simulator, wss://")
        qtbot.waitUntil(lambda: link.bus.delivering and link.feed.connected, timeout=WAIT_MS)
        rows = window.watchlist_model.rows()
        qtbot.waitUntil(lambda: all(row.last_tick for row in rows), timeout=WAIT_MS)
    finally:
        stopping = qt_event_loop.create_task(link.stop())
        qtbot.waitUntil(stopping.done, timeout=WAIT_MS)
