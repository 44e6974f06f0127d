"""Starting the desktop app, or the backend alone where no window can be shown.

:func:`main` (run by :func:`desktop.entry.main`) runs

- the headless backend (``python -m backend.runtime.headless``) when there is no display, after
  saying so in one line (an app asked to attach says it cannot, and exits);
- otherwise the app: Qt application, main window and the backend it runs (or the one the command
  line attaches it to, see :mod:`desktop.command_line`), all on one qasync loop until the window
  closes; then the backend it runs is stopped.

PySide6 is imported before qasync, so qasync binds to PySide6.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

# isort: split
import qasync  # after PySide6: qasync uses the Qt binding already imported

from backend.instruments.master import InstrumentMaster, MasterFormatError, load_master
from backend.instruments.sources import cached_master
from backend.runtime.resources import resource_path
from backend.runtime.settings import SIMULATOR, Settings, SettingsError, load_settings
from desktop.command_line import parse_command_line
from desktop.link.attachment import Attachment
from desktop.link.backend_link import BackendLink
from desktop.logs.handler import LogModelHandler
from desktop.main_window import MainWindow
from desktop.preferences import APPLICATION, ORGANISATION
from desktop.strategy.access import follow_link

logger = logging.getLogger("feedpool.desktop")

NO_DISPLAY = (
    "No display (DISPLAY and WAYLAND_DISPLAY are unset): running the backend headless instead"
    " (python -m backend.runtime.headless)."
)
NO_DISPLAY_TO_ATTACH = (
    "No display (DISPLAY and WAYLAND_DISPLAY are unset): an attached app needs a window."
)
EXIT_USAGE = 2


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


def link_window(
    window: MainWindow,
    environment: Mapping[str, str] | None = None,
    attachment: Attachment | None = None,
) -> BackendLink:
    """A link that feeds ``window`` from a backend it runs (with ``environment`` added) or from
    ``attachment``: its watchlist subscribed, bus and feed messages shown, its own feed marked
    among the API's clients, the backend's state (and attachment, and a bus that refuses the
    app) in the status bar, a restart when settings are applied, an attachment when one is
    chosen, and the API's URL and key in File > Connect a strategy."""
    link = BackendLink(
        window.watchlist_model,
        window.handle_bus_message,
        window.handle_feed_message,
        window.log_model.append,
        environment=environment,
        attachment=attachment,
    )
    window.clients_pane.own_address = lambda: link.feed.local_address
    link.state_changed.connect(window.set_backend_state)
    link.bus_refused.connect(window.set_bus_refusal)
    link.attached.connect(window.show_attachment)
    window.settings_applied.connect(link.restart)
    window.take_session = link.feed.set_session
    window.attach_requested.connect(link.attach)
    follow_link(link, window.strategy_dialog.set_access)
    return link


async def serve(
    window: MainWindow, link: BackendLink, meanwhile: Callable[[], None] | None = None
) -> int:
    """Link ``window`` to its backend until the window closes, then stop the backend it runs;
    ``meanwhile`` runs once the backend is starting."""
    closed = asyncio.Event()
    window.closed.connect(closed.set)
    link.start()
    if meanwhile is not None:
        meanwhile()
    await closed.wait()
    await link.stop()
    return 0


def run_app(argv: list[str], attachment: Attachment | None = None) -> int:
    app = QApplication(argv)
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setWindowIcon(QIcon(str(resource_path("icons", "feedpool.svg"))))
    app.setQuitOnLastWindowClosed(False)  # ``serve`` ends the loop once the backend has stopped

    window = MainWindow()
    logging.getLogger().addHandler(LogModelHandler(window.log_model))
    logging.getLogger().setLevel(logging.INFO)
    # Ctrl-C in the terminal quits like the Quit action, stopping the backend on the way.
    signal.signal(signal.SIGINT, lambda *_: QTimer.singleShot(0, window.close))
    window.show()
    return qasync.run(
        serve(window, link_window(window, attachment=attachment), lambda: settle(window))
    )


def settle(window: MainWindow) -> None:
    """What the app reads while its backend starts: the instrument master."""
    window.watchlist_pane.set_master(load_instrument_master())
    # The master and the window live as long as the app: keep them out of the garbage
    # collector's full passes, each of which stalled the ticking window by a fifth of a second.
    gc.freeze()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    attachment = parse_command_line(argv[1:])
    if not has_display():
        if attachment is not None:
            print(NO_DISPLAY_TO_ATTACH, flush=True)
            return EXIT_USAGE
        print(NO_DISPLAY, flush=True)
        from backend.runtime.headless import main as headless_main

        return headless_main([])
    return run_app(argv, attachment)
