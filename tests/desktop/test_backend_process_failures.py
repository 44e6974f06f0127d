"""The backend process's ways to fail: a bad setting, a crash, no ready line, no exit on terminate.

The bad setting is the real backend's; the other cases run a stand-in program in its place, since
the real backend never misbehaves that way on purpose.
"""

from __future__ import annotations

import logging
import sys

import psutil
import pytest

from desktop.link import process as backend_process
from desktop.link.process import FAILED, RESTARTING, STOPPED, BackendProcess

WAIT_MS = 15_000


@pytest.fixture
def run_instead(monkeypatch):
    """Run ``python -c code`` where the backend would run."""

    def use(code: str) -> None:
        monkeypatch.setattr(
            backend_process, "backend_command", lambda parent: (sys.executable, ["-c", code])
        )

    return use


@pytest.fixture
def process(qt_event_loop, qtbot, private_dirs):
    """A backend process in private dirs with free ports; stopped at the end."""
    process = BackendProcess(
        {
            "XDG_CONFIG_HOME": str(private_dirs / "config"),
            "XDG_STATE_HOME": str(private_dirs / "state"),
            "WEBSOCKET_PORT": "0",
            "ZMQ_PORT": "0",
        }
    )
    yield process
    stopping = qt_event_loop.create_task(process.stop())
    qtbot.waitUntil(stopping.done, timeout=WAIT_MS)


def test_a_bad_setting_fails_for_good_with_the_backends_reason(process, qtbot):
    process.environment["MAX_WEBSOCKET_CONNECTIONS"] = "0"
    states = []
    process.state_changed.connect(lambda state, detail: states.append((state, detail)))
    process.start()
    qtbot.waitUntil(lambda: process.state == FAILED, timeout=WAIT_MS)
    assert states[-1] == (
        FAILED,
        "invalid setting MAX_WEBSOCKET_CONNECTIONS='0': expected a whole number from 1 to 100,"
        " or empty for the broker's own limit (INVALID_SETTING); correct it in File > Settings",
    )
    assert RESTARTING not in [state for state, _ in states]


def test_a_crash_is_logged_with_its_traceback_and_restarted(process, qtbot, run_instead, caplog):
    run_instead("raise RuntimeError('the market is closed')")
    process.start()
    with caplog.at_level(logging.ERROR, "feedpool.desktop.backend"):
        qtbot.waitUntil(lambda: process.state == RESTARTING, timeout=WAIT_MS)
    [record] = caplog.records
    assert record.getMessage().startswith(
        "The backend stopped: it exited with status 1. Its last output:\nTraceback"
    )
    assert record.getMessage().endswith("RuntimeError: the market is closed")


def test_no_ready_line_in_time_is_a_failed_start(process, qtbot, run_instead, monkeypatch):
    monkeypatch.setattr(backend_process, "READY_TIMEOUT_MS", 300)
    run_instead("import time; time.sleep(60)")
    details = []
    process.state_changed.connect(lambda state, detail: details.append(detail))
    process.start()
    qtbot.waitUntil(lambda: process.state == RESTARTING, timeout=WAIT_MS)
    assert details[-1] == "it did not report ready within 0.3 s; starting again in 0.5 s"


def test_a_ready_line_that_does_not_match_its_type_is_a_failed_start(process, qtbot, run_instead):
    run_instead(
        'import time; print(\'{"event": "ready", "zmq": "tcp://127.0.0.1:1"}\', flush=True);'
        " time.sleep(60)"
    )
    details = []
    process.state_changed.connect(lambda state, detail: details.append(detail))
    process.start()
    qtbot.waitUntil(lambda: process.state == RESTARTING, timeout=WAIT_MS)
    assert details[-1] == (
        "it printed a malformed 'ready' line: Object missing required field `ws`;"
        " starting again in 0.5 s"
    )


def test_stop_kills_a_backend_that_ignores_terminate(
    process, qtbot, qt_event_loop, run_instead, monkeypatch
):
    monkeypatch.setattr(backend_process, "STOP_TIMEOUT_MS", 200)
    run_instead(
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        " print('deaf', file=sys.stderr, flush=True); time.sleep(60)"
    )
    with qtbot.waitSignal(process.output_line, timeout=WAIT_MS):
        process.start()
    pid = process.pid
    stopping = qt_event_loop.create_task(process.stop())
    qtbot.waitUntil(stopping.done, timeout=WAIT_MS)
    assert process.state == STOPPED
    assert not psutil.pid_exists(pid)
