"""``python -m desktop``: the app where a window can be shown, the headless backend where not, and
the backend itself when asked with ``--backend`` (as the frozen app runs it)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from desktop.app import NO_DISPLAY, has_display
from desktop.link.command import backend_command

DISPLAY_VARIABLES = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")


@pytest.mark.parametrize(
    ("environ", "platform", "expected"),
    [
        ({}, "linux", False),
        ({"DISPLAY": ":0"}, "linux", True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux", True),
        ({"DISPLAY": ""}, "freebsd14", False),
        ({}, "win32", True),
        ({}, "darwin", True),
    ],
)
def test_has_display(environ, platform, expected):
    assert has_display(environ, platform) is expected


@pytest.fixture
def environment(private_dirs) -> dict[str, str]:
    """This environment without a display, in private dirs, on free ports."""
    environ = {k: v for k, v in os.environ.items() if k not in DISPLAY_VARIABLES}
    return {**environ, "WEBSOCKET_PORT": "0", "ZMQ_PORT": "0"}


def test_without_a_display_it_says_so_and_runs_headless(environment, tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "desktop"],
        env=environment,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout.readline().rstrip("\n") == NO_DISPLAY
        assert "symbols" in process.stdout.readline()  # the first line of pool statistics
    finally:
        process.kill()
        process.wait()


def test_the_backend_runs_as_a_module_or_as_the_frozen_app_with_a_flag(monkeypatch):
    assert backend_command(42) == (sys.executable, ["-m", "backend", "--parent-pid", "42"])
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert backend_command(42) == (sys.executable, ["--backend", "--parent-pid", "42"])


def test_the_backend_flag_runs_the_backend(environment, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "desktop", "--backend", "--print-api-key"],
        env={**environment, "FEEDPOOL_API_KEY": "flag-test-key"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout == "flag-test-key\n"
