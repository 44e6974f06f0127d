"""Starting the desktop app, or the backend alone where no window can be shown.

:func:`main` (run by :func:`desktop.entry.main`) runs

- the headless backend (``python -m backend.headless``) when there is no display, after saying so
  in one line;
- otherwise the app: Qt application, main window and the backend it runs, all on one qasync loop
  until the window closes; then the backend is stopped.

PySide6 is imported before qasync, so qasync binds to PySide6.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Mapping

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

# isort: split
import qasync  # after PySide6: qasync uses the Qt binding already imported

from backend.instruments import InstrumentMaster, MasterFormatError, load_master
from backend.master_source import cached_master
from backend.resources import resource_path
from backend.settings import SIMULATOR, Settings, SettingsError, load_settings
from desktop.link.backend_link import BackendLink
from desktop.logs.handler import LogModelHandler
from desktop.main_window import APPLICATION, ORGANISATION, MainWindow

logger = logging.getLogger("feedpool.desktop")

NO_DISPLAY = (
    "No display (DISPLAY and WAYLAND_DISPLAY are unset): running the backend headless instead"
    " (python -m backend.headless)."
)


def has_display(environ: Mapping[str, str] = os.environ, platform: str = sys.platform) -> bool:
    """Whether a window can be shown: always on Windows and macOS; elsewhere when an X11 or
    Wayland display is named, or a Qt platform is chosen explicitly (``offscreen``, say)."""
    if platform.startswith(("win", "darwin")):
        return True
    return any(environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def load_instrument_master() -> InstrumentMaster | None:
    """The master symbols are completed and checked against; ``None`` if there is none yet.

    With the simulator: the master the settings name, or the bundled one. With a real broker:
    the copy of the broker's master its backend last downloaded.
    """
    try:
        settings = load_settings()
    except SettingsError as exc:
        logger.warning("settings: %s; using the bundled instrument master", exc)
        settings = Settings()
    try:
        if settings.BROKER == SIMULATOR:
            return load_master(settings.INSTRUMENT_MASTER or None)
        master = cached_master(settings.broker, settings.INSTRUMENT_MASTER)
    except (MasterFormatError, OSError) as exc:
        logger.warning("instrument master not loaded, symbols will not be checked: %s", exc)
        return None
    if master is None:
        logger.info("no instrument master downloaded yet; symbols will not be checked")
    return master


def link_window(window: MainWindow, environment: Mapping[str, str] | None = None) -> BackendLink:
    """A link to a backend (run with ``environment`` added) that feeds ``window``: its watchlist
    subscribed, bus and feed messages shown, its own feed marked among the API's clients, the
    backend's state in the status bar, and a restart when settings are applied."""
    link = BackendLink(
        window.watchlist_model,
        window.handle_bus_message,
        window.handle_feed_message,
        window.log_model.append,
        environment=environment,
    )
    window.clients_pane.own_address = lambda: link.feed.local_address
    link.process.state_changed.connect(window.set_backend_state)
    window.settings_applied.connect(link.restart)
    return link


async def serve(window: MainWindow, link: BackendLink) -> int:
    """Run the backend for ``window`` until the window closes, then stop the backend."""
    closed = asyncio.Event()
    window.closed.connect(closed.set)
    link.start()
    await closed.wait()
    await link.stop()
    return 0


def run_app(argv: list[str]) -> int:
    app = QApplication(argv)
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setWindowIcon(QIcon(str(resource_path("icons", "feedpool.svg"))))
    app.setQuitOnLastWindowClosed(False)  # ``serve`` ends the loop once the backend has stopped

    window = MainWindow()
    logging.getLogger().addHandler(LogModelHandler(window.log_model))
    logging.getLogger().setLevel(logging.INFO)
    window.watchlist_pane.set_master(load_instrument_master())
    # The master and the window live as long as the app: keep them out of the garbage
    # collector's full passes, each of which stalled the ticking window by a fifth of a second.
    gc.freeze()
    # Ctrl-C in the terminal quits like the Quit action, stopping the backend on the way.
    signal.signal(signal.SIGINT, lambda *_: QTimer.singleShot(0, window.close))
    window.show()
    return qasync.run(serve(window, link_window(window)))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    if not has_display():
        print(NO_DISPLAY, flush=True)
        from backend.headless import main as headless_main

        return headless_main([])
    return run_app(argv)
