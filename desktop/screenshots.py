"""``python -m desktop.screenshots`` (``make screenshots``): the README's screenshots, offscreen.

It runs the app as ``make run`` does, on the bundled simulator, but offscreen and in a home of
its own (settings, watchlist and remembered layout in a temporary folder, none of the user's). It
fills the watchlist (NSE:SBIN as Depth, then the bundled F&O list), selects the Depth row,
connects a second program to the client API, shows every dock, lets the plots fill for
``--seconds``, and writes a screenshot per size in :data:`SIZES` to
``resources/screenshots/feedpool-WIDTHxHEIGHT.png``; where the logs and the clients share the
bottom as tabs, a second one with the clients in front, ``feedpool-WIDTHxHEIGHT-clients.png``.
With ``--accounts`` the simulator plays two broker accounts (:data:`ACCOUNTS_SCENE`: an Angel One
account of two connections, then a Kite account), and the files are named
``feedpool-WIDTHxHEIGHT-accounts.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings, QSize
from PySide6.QtWidgets import QApplication

# isort: split
import qasync  # after PySide6: qasync uses the Qt binding already imported
from websockets.asyncio.client import connect

from backend.instruments.master import load_master
from backend.runtime.resources import resource_path
from desktop.app import link_window, serve
from desktop.link.backend_link import BackendLink
from desktop.link.process import READY
from desktop.main_window import MainWindow

SIZES = (QSize(1366, 768), QSize(1920, 1080))
OUTPUT = Path(__file__).resolve().parent.parent / "resources" / "screenshots"
XDG_NAMES = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")
DEPTH_SYMBOL = ("SBIN", "NSE")
LIST = "fno_2500.csv"
#: What the second program holds.
SECOND_PROGRAM = ("INFY", "TCS", "RELIANCE", "HDFCBANK", "SBIN")
#: The two-account scene: the list fills the Angel One account's two connections, then Kite's.
ACCOUNTS_SCENE = {
    "BROKER": "simulator",
    "ACCOUNTS": json.dumps(
        [
            {"name": "angel-main", "broker": "angel", "MAX_WEBSOCKET_CONNECTIONS": 2},
            {"name": "kite", "broker": "zerodha"},
        ]
    ),
}
START_SECONDS = 60.0
SETTLE_SECONDS = 3.0


def screenshot_path(size: QSize, suffix: str = "") -> Path:
    return OUTPUT / f"feedpool-{size.width()}x{size.height()}{suffix}.png"


async def shoot(window: MainWindow, path: Path) -> Path:
    await asyncio.sleep(SETTLE_SECONDS)  # painted as laid out
    window.grab().save(str(path))
    return path


async def until(condition, what: str, seconds: float = START_SECONDS) -> None:
    """Wait for ``condition()`` to hold, or fail naming ``what``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: gave up waiting for {what}")
        await asyncio.sleep(0.1)


async def second_program(url: str, key: str, stop: asyncio.Event) -> None:
    """A strategy of its own on the client API, holding :data:`SECOND_PROGRAM` until ``stop``."""
    async with connect(url) as ws:
        await ws.send(json.dumps({"action": "authenticate", "api_key": key}))
        symbols = [{"symbol": symbol, "exchange": "NSE"} for symbol in SECOND_PROGRAM]
        await ws.send(json.dumps({"action": "subscribe", "symbols": symbols, "mode": "Quote"}))
        reading = asyncio.ensure_future(_drain(ws))
        await stop.wait()
        reading.cancel()


async def _drain(ws) -> None:
    async for _ in ws:
        pass


async def take(
    window: MainWindow, link: BackendLink, seconds: float, scene: str = ""
) -> list[Path]:
    """Fill the app, then shoot it at each size; the files written, their names ending with
    ``scene``."""
    await until(lambda: link.process.state == READY and link.feed.connected, "the backend")
    pane = window.watchlist_pane
    pane.import_typed(f"{DEPTH_SYMBOL[1]}:{DEPTH_SYMBOL[0]}", DEPTH_SYMBOL[1], 3)
    pane.import_files([resource_path("watchlists", LIST)])
    view = pane.view
    row = window.watchlist_model.row_of(DEPTH_SYMBOL)
    view.setCurrentIndex(view.proxy.mapFromSource(window.watchlist_model.index(row, 0)))
    access = window.strategy_dialog.access
    stop = asyncio.Event()
    program = asyncio.ensure_future(second_program(access.url, access.key, stop))
    clients = window.clients_pane
    await until(lambda: clients.model.rowCount() >= 2, "the second program")
    clients.view.selectRow(1)
    await asyncio.sleep(seconds)  # the history, the chart and the gauges fill
    written = []
    for size in SIZES:
        window.resize(size)
        await asyncio.sleep(SETTLE_SECONDS)  # laid out at the new size
        window.lay_out_docks()
        written.append(await shoot(window, screenshot_path(size, scene)))
        if window.tabifiedDockWidgets(window.logs_dock):
            window.clients_dock.raise_()
            written.append(await shoot(window, screenshot_path(size, f"{scene}-clients")))
            window.logs_dock.raise_()
    stop.set()
    await program
    return written


async def run(window: MainWindow, link: BackendLink, seconds: float, scene: str) -> list[Path]:
    serving = asyncio.ensure_future(serve(window, link))
    try:
        return await take(window, link, seconds, scene)
    finally:
        window.close()
        await serving


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40.0, help="time the plots fill for")
    parser.add_argument(
        "--accounts", action="store_true", help="the simulator plays two broker accounts"
    )
    args = parser.parse_args(argv)
    ports = {"WEBSOCKET_PORT": "0", "ZMQ_PORT": "0"}
    environment = {**ports, **ACCOUNTS_SCENE} if args.accounts else ports
    scene = "-accounts" if args.accounts else ""
    with tempfile.TemporaryDirectory(prefix="feedpool-screenshots-") as home:
        for name in XDG_NAMES:
            os.environ[name] = str(Path(home) / name.lower())
        app = QApplication(sys.argv[:1])
        for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
            QSettings.setPath(fmt, QSettings.Scope.UserScope, str(Path(home) / "qsettings"))
        window = MainWindow(load_master())
        window.resize(SIZES[0])
        window.show()
        link = link_window(window, environment)
        app.setQuitOnLastWindowClosed(False)
        written = qasync.run(run(window, link, args.seconds, scene))
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
