"""Time from launching FeedPool to a shown window with a ready backend.

Usage: ``python bench/startup.py [--runs N] [-- COMMAND ...]``; the command defaults to the
packaged app, ``dist/FeedPool/FeedPool``; ``-- .venv/bin/python -m desktop`` measures the app from
source.

Each run launches the app offscreen (``QT_QPA_PLATFORM=offscreen``) with user dirs of its own and
ports chosen by the system, and stops the clock when the backend the app started logs that the
app's feed client has authenticated: by then the window is shown (the app shows it before it
starts the backend), the backend has printed its ready line and the app has connected to it. The
app is then terminated, and its backend stops with it. The floor is 3 s.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from backend.runtime.settings import log_dir

DEFAULT_COMMAND = ["dist/FeedPool/FeedPool"]
#: The backend's log line once the app's feed client is in.
CONNECTED = re.compile(r"feedpool\.proxy Client \d+ \(\S+\) authenticated")
LIMIT_SECONDS = 60.0
POLL_SECONDS = 0.005
FLOOR_SECONDS = 3.0
USER_DIR_VARIABLES = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")


def connected(log: Path) -> bool:
    try:
        return CONNECTED.search(log.read_text(encoding="utf-8", errors="replace")) is not None
    except FileNotFoundError:
        return False


def measure(command: list[str], home: Path) -> float:
    """Seconds from launching ``command`` until its backend has the app as a client."""
    environment = {name: str(home / name.lower()) for name in USER_DIR_VARIABLES}
    os.environ.update(environment)  # so that log_dir() names the app's log dir
    log = log_dir() / "backend.log"
    started = time.perf_counter()
    app = subprocess.Popen(
        command,
        env={
            **os.environ,
            **environment,
            "QT_QPA_PLATFORM": "offscreen",
            "WEBSOCKET_PORT": "0",
            "ZMQ_PORT": "0",
        },
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not connected(log):
            if app.poll() is not None:
                raise SystemExit(f"{command[0]} exited with status {app.returncode}")
            if time.perf_counter() - started > LIMIT_SECONDS:
                raise SystemExit(f"no ready backend within {LIMIT_SECONDS:g} s")
            time.sleep(POLL_SECONDS)
        return time.perf_counter() - started
    finally:
        stop(app)


def stop(app: subprocess.Popen) -> None:
    """Terminate the app and wait until its backend has ended too."""
    children = psutil.Process(app.pid).children(recursive=True)
    app.terminate()
    app.wait(10)
    psutil.wait_procs(children, timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="launches to time (default 5)")
    parser.add_argument("command", nargs="*", default=DEFAULT_COMMAND, help="the app to launch")
    args = parser.parse_args()
    times = []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="feedpool-startup-") as home:
            times.append(measure(args.command, Path(home)))
        print(f"run {run}: {times[-1]:.2f} s", flush=True)
    median = statistics.median(times)
    verdict = "under" if median < FLOOR_SECONDS else "OVER"
    print(
        f"launch to shown window with a ready backend: median {median:.2f} s, "
        f"min {min(times):.2f} s, max {max(times):.2f} s ({verdict} the {FLOOR_SECONDS:g} s floor)"
    )
    if median >= FLOOR_SECONDS:
        sys.exit(1)


if __name__ == "__main__":
    main()
