"""The packaged app's parts, from source: the entry point, the self-test and the resource helper.

The frozen build itself is checked by ``make test``, which builds it and runs
``dist/FeedPool/FeedPool --self-test``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.instruments.master import EXCHANGES, load_master
from backend.runtime.resources import resource_path, resources_dir
from desktop import self_test
from desktop.link.command import backend_command
from desktop.logs.entry import LogEntry

ROOT = Path(__file__).resolve().parent.parent
#: Prints the Qt modules a run of ``desktop.entry`` with the given arguments imported.
QT_MODULES_AFTER = (
    "import sys; from desktop.entry import main; code = main(['FeedPool', *sys.argv[1:]]); "
    "print('Qt modules:', sorted(m for m in sys.modules if m.startswith('PySide6'))); "
    "sys.exit(code)"
)


@pytest.fixture
def environ_restored():
    """The self-test changes this process's environment; put it back afterwards."""
    saved = os.environ.copy()
    yield
    os.environ.clear()
    os.environ.update(saved)


def run_entry(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", QT_MODULES_AFTER, *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_self_test_passes_without_importing_qt():
    started = time.monotonic()
    result = run_entry("--self-test")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-2:] == ["self-test passed", "Qt modules: []"]
    assert any("300 symbols from 8 exchanges all ticked" in line for line in lines)
    assert any("backend stopped, exit status 0" in line for line in lines)
    assert time.monotonic() - started < 15


def test_backend_flag_runs_the_backend_without_importing_qt():
    result = run_entry("--backend", "--print-api-key")
    assert result.returncode == 0, result.stderr
    key, modules = result.stdout.splitlines()
    assert len(key) == 43
    assert modules == "Qt modules: []"


def test_a_backend_that_cannot_start_fails_the_self_test(monkeypatch, capsys, environ_restored):
    settings = {**self_test.BACKEND_SETTINGS, "MAX_WEBSOCKET_CONNECTIONS": "0"}
    monkeypatch.setattr(self_test, "BACKEND_SETTINGS", settings)
    assert self_test.main() == 1
    reason = capsys.readouterr().out.splitlines()[-1]
    assert reason.startswith("self-test FAILED: the backend cannot start: ")
    assert "MAX_WEBSOCKET_CONNECTIONS" in reason


def test_the_export_check_refuses_a_secret(tmp_path):
    records = [LogEntry(0.0, "INFO", "pool", line) for line in self_test.pool_lines()]
    assert self_test.check_export(records, tmp_path / "ok.log", ["hunter2"]) == len(records)
    leaked = [*records, LogEntry(0.0, "INFO", "app", "key is hunter2")]
    with pytest.raises(self_test.SelfTestFailed, match="API key or a broker credential"):
        self_test.check_export(leaked, tmp_path / "leak.log", ["hunter2"])


def test_the_export_check_wants_every_pool_line(tmp_path):
    records = [LogEntry(0.0, "INFO", "pool", line) for line in self_test.pool_lines()[1:]]
    with pytest.raises(self_test.SelfTestFailed, match=r"\[POOL\] Connection 1 started"):
        self_test.check_export(records, tmp_path / "export.log", [])


def test_the_symbols_come_from_every_exchange_of_the_master():
    picked = self_test.pick_symbols(self_test.SYMBOLS)
    assert len({(i.symbol, i.exchange) for i in picked}) == self_test.SYMBOLS
    assert {i.exchange for i in picked} == {i.exchange for i in load_master()} <= set(EXCHANGES)


def test_the_backend_command_from_source_and_frozen(monkeypatch):
    assert backend_command(42) == (sys.executable, ["-m", "backend", "--parent-pid", "42"])
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert backend_command(42) == (sys.executable, ["--backend", "--parent-pid", "42"])


def test_resources_are_beside_the_packages_from_source():
    assert resources_dir() == ROOT / "resources"
    assert resource_path("instruments.csv").is_file()
    assert resource_path("icons", "feedpool.svg").is_file()


def test_resources_are_inside_the_bundle_when_frozen(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources_dir() == tmp_path / "resources"
    assert resource_path("watchlists", "sample.csv") == tmp_path / "resources/watchlists/sample.csv"
