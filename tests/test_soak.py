"""The soak (``bench/soak.py``) on a short schedule: each fault once, at a small symbol count.

The backend runs on its own simulator under the desktop app's supervisor, as in ``make soak``;
here 110 symbols over three pooled connections of 50, at 10 ticks/s each. Every fault must
recover within its bound, with no subscription lost and no request unanswered. The two faults
that take longest to play out, a muted connection and a client that stops reading, have tests of
their own (``test_sessions.py``, ``test_proxy_delivery.py``) and are left to ``make soak``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FAULTS = ("drop", "expire_sessions", "pause", "join_leave", "race", "kill")
SHORT_SCHEDULE = [
    "--cycles", "1",
    "--symbols", "110",
    "--per-connection", "50",
    "--rate", "10",
    "--stale-seconds", "3",
    "--freeze", "3",
    "--join-cycles", "3",
    "--quiet", "0.5",
    "--faults", ",".join(FAULTS),
]  # fmt: skip
SOAK_SECONDS = 100


@pytest.mark.timeout(SOAK_SECONDS + 10)
def test_every_fault_recovers_and_nothing_is_lost(tmp_path: Path) -> None:
    figures = tmp_path / "soak.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "soak.py"), *SHORT_SCHEDULE, "--json", str(figures)],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SOAK_SECONDS,
        check=False,
    )
    assert figures.exists(), f"no figures; stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    summary = json.loads(figures.read_text())
    assert summary["lost"] == 0, run.stdout
    assert summary["unanswered"] == 0, run.stdout
    faults = {fault["fault"] for fault in summary["faults"]}
    assert faults >= set(FAULTS), run.stdout
    assert [f["fault"] for f in summary["faults"] if not f["ok"]] == [], run.stdout
    assert summary["failures"] == [], run.stdout
    assert run.returncode == 0, run.stdout
