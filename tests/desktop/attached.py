"""Apps attached to a backend the test runs: the backend, the apps, and waiting on them.

The backend is ``python -m backend`` on OS-chosen ports, in user dirs of its own; the apps run on
the test module's qasync loop.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from backend_process import BackendProcess
from msgspec import Struct
from PySide6.QtCore import QEventLoop

from backend.bus.messages import PoolStats
from backend.feed import POOL_TOPIC
from backend.instruments.symbol_lists import WatchEntry
from desktop.app import link_window, serve
from desktop.link.backend_link import BackendLink
from desktop.main_window import MainWindow

XDG_NAMES = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")
WAIT_MS = 20_000


def user_dirs(home: Path) -> dict[str, str]:
    """The environment that puts a process's user dirs under ``home``."""
    return {name: str(home / name.lower()) for name in XDG_NAMES}


def finish(qapp, task: asyncio.Future, seconds: float = 30.0):
    """Run Qt's events (and so the loop's tasks) until ``task`` is done; its result."""
    deadline = time.monotonic() + seconds
    while not task.done():
        assert time.monotonic() < deadline, "timed out"
        qapp.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 50)
    return task.result()


class Backend:
    """The test's backend, in dirs of its own, started again on the same ports when asked."""

    def __init__(self, qt_event_loop, qapp, home: Path, **settings: str) -> None:
        self._loop, self._qapp = qt_event_loop, qapp
        self.home = home
        self.env = {**user_dirs(home), **settings}
        self.start()

    def start(self, **ports: str) -> None:
        started = BackendProcess.start(self.home, **self.env, **ports)
        self.process, self.ready = finish(self._qapp, self._loop.create_task(started))

    def stop(self) -> None:
        self.process.process.send_signal(signal.SIGTERM)
        finish(self._qapp, self._loop.create_task(self.process.exited()))

    def restart(self) -> None:
        """Stop it and start it again where it was."""
        self.stop()
        self.start(
            WEBSOCKET_PORT=str(urlsplit(self.ready["ws"]).port),
            ZMQ_PORT=str(urlsplit(self.ready["zmq"]).port),
        )

    @property
    def pid(self) -> int:
        return self.process.process.pid


@dataclass
class AttachedApp:
    window: MainWindow
    link: BackendLink
    serving: asyncio.Task
    #: When each ``SYS.POOL`` reached the window (ms), and the last one.
    pools: list[float]
    pool: PoolStats | None

    def ticked_since(self, since_ms: float) -> bool:
        rows = self.window.watchlist_model.rows()
        return all(row.last_tick and row.last_tick > since_ms for row in rows)

    def pooled_since(self, since_ms: float) -> bool:
        return bool(self.pools) and self.pools[-1] > since_ms

    def connections(self) -> list[tuple[int, int]]:
        """The last ``SYS.POOL``'s connections: index and symbols held."""
        return [(c.index, c.symbols) for c in self.pool.connections] if self.pool else []

    def close(self, qapp) -> None:
        """Quit the app, unless it has quit."""
        if not self.serving.done():
            self.window.close()
            finish(qapp, self.serving, 10)


def attached_app(window: MainWindow, attachment, loop) -> AttachedApp:
    """``window`` linked to ``attachment`` and served, each ``SYS.POOL`` it is shown noted."""
    show = window.handle_bus_message

    def note(topic: str, message: Struct) -> None:
        if topic == POOL_TOPIC:
            app.pools.append(time.time() * 1000)
            app.pool = message
        show(topic, message)

    window.handle_bus_message = note
    link = link_window(window, attachment=attachment)
    app = AttachedApp(window, link, loop.create_task(serve(window, link)), [], None)
    return app


def window_in(home: Path, name: str, entries: list[WatchEntry]) -> MainWindow:
    """A window whose files are ``name``'s under ``home``, watching ``entries``."""
    window = MainWindow(
        watchlist_path=home / f"{name}-watchlist.json",
        settings_path=home / f"{name}-settings.json",
        attachments_path=home / f"{name}-attachments.json",
    )
    window.watchlist_model.add_entries(entries)
    return window
