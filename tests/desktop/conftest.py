"""Desktop tests run offscreen, never block on a dialog, and write only under tmp_path.

Code on the app's asyncio loop runs on :func:`qt_event_loop`: a qasync loop that is the running
loop from the start, so its tasks advance whenever Qt processes events, as in ``qtbot.waitUntil``.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Iterator

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QDialog, QFileDialog, QMessageBox

# isort: split
import qasync  # after PySide6: qasync uses the Qt binding already imported

from backend.instruments.master import CSV_COLUMNS, InstrumentMaster, load_master

BLOCKING_CALLS = (
    (QMessageBox, ("exec", "information", "warning", "critical", "question")),
    (QFileDialog, ("getOpenFileName", "getOpenFileNames", "getSaveFileName")),
    (QDialog, ("exec",)),
)

INSTRUMENTS = [
    ("3045", "SBIN", "STATE BANK OF INDIA", "NSE"),
    ("11536", "TCS", "TATA CONSULTANCY SERVICES", "NSE"),
    ("1594", "INFY", "INFOSYS", "NSE"),
    ("2885", "RELIANCE", "RELIANCE INDUSTRIES", "NSE"),
    ("2031", "M&M", "MAHINDRA & MAHINDRA", "NSE"),
    ("500112", "SBIN", "STATE BANK OF INDIA", "BSE"),
    ("26000", "NIFTY", "NIFTY 50", "NSE_INDEX"),
]


@pytest.fixture(autouse=True)
def no_blocking_dialogs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any modal dialog or file chooser fails the test instead of hanging it.

    A test that expects a file chooser replaces the call with its own ``monkeypatch.setattr``.
    """

    def refuse(name: str):
        def blocked(*args, **kwargs):
            pytest.fail(f"a test opened a blocking dialog: {name}")

        return blocked

    for cls, names in BLOCKING_CALLS:
        for name in names:
            monkeypatch.setattr(cls, name, refuse(f"{cls.__name__}.{name}"))


@pytest.fixture(scope="session", autouse=True)
def collections_scan_the_tests_objects(qapp: QApplication) -> None:
    """What the session holds before its first test (modules, the application) is left out of
    the collector's scans (``gc.freeze``): the collections below scan the tests' own objects."""
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="module", autouse=True)
def qt_garbage_of_the_module_collected_here() -> Iterator[None]:
    """What a module's fixtures leave in reference cycles is collected after they are gone."""
    yield
    gc.collect()


@pytest.fixture(autouse=True)
def qt_garbage_collected_here() -> Iterator[None]:
    """Each test's Qt objects left in reference cycles are collected when it ends, on this (the
    GUI) thread. Left to the collector's own time, they may be collected on whichever thread
    allocates then, such as a worker thread while this one processes Qt events, and a QObject
    destroyed off the GUI thread can crash the process."""
    yield
    gc.collect()


@pytest.fixture(autouse=True)
def private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """platformdirs and QSettings write under ``tmp_path``, never to the user's real dirs."""
    home = tmp_path / "home"
    for variable in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(variable, str(home / variable.lower()))
    qsettings = str(home / "qsettings")
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, qsettings)
    return home


@pytest.fixture
def small_master(tmp_path: Path) -> InstrumentMaster:
    """A small instrument master in the bundled CSV format."""
    path = tmp_path / "instruments.csv"
    rows = [",".join(CSV_COLUMNS)]
    for token, symbol, name, exchange in INSTRUMENTS:
        kind = "AMXIDX" if exchange.endswith("_INDEX") else "EQ"
        rows.append(f"{token},{symbol},{name},{exchange},{kind},1,0.05,,0,100.0")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return load_master(path)


@pytest.fixture(scope="module")
def qt_event_loop(qapp: QApplication):
    """The asyncio loop of a test module, driven by Qt's event loop like the app's.

    It is made the running loop without qasync's ``run_forever``: that runs ``QApplication.exec``,
    and stopping it quits Qt's event loops for the rest of the session.
    """
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    asyncio.events._set_running_loop(loop)
    yield loop
    deadline = time.monotonic() + 5
    while asyncio.all_tasks(loop) and time.monotonic() < deadline:
        qapp.processEvents()  # let cancelled tasks finish
    asyncio.events._set_running_loop(None)
    loop.close()
    asyncio.set_event_loop(None)
