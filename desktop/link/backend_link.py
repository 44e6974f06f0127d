"""Keeping the app connected to the backend it runs.

:class:`BackendLink` owns the app's three ties to the backend: the :class:`BackendProcess`, the
:class:`BusMonitor` (gauges, log records, health) and the :class:`FeedClient` (the watchlist's
subscriptions and ticks). When a run is ready, the bus monitor and the feed are pointed at the
endpoints its ready line names, and the feed subscribes the whole watchlist, so after a crash
and restart every row ticks again. Rows added and removed become subscribe and unsubscribe
requests. The link knows no window: it is given the watchlist, and where bus messages, feed
messages and the backend's stderr records go (:func:`desktop.app.link_window` wires a window).

The backend's log records come both on its stderr and on ``SYS.LOG``; each is handed on once
(:class:`~desktop.link.log_merge.LogMerge`). A crash traceback, which never reaches the bus, is
logged with the reason the run ended (see :mod:`desktop.link.process`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import QObject

from backend.apikey import api_key
from backend.feed import LOG_TOPIC
from backend.settings import SettingsError, load_settings
from desktop.link.bus_monitor import BusDeliver, BusMonitor
from desktop.link.feed_client import FeedClient, FeedDeliver
from desktop.link.log_merge import LogMerge
from desktop.link.process import READY, STARTING, BackendProcess
from desktop.link.ready_line import BackendEndpoints
from desktop.logs.entry import LogEntry, entry_from_output
from desktop.watchlist.model import WatchlistModel

log = logging.getLogger("feedpool.desktop.backend")


def client_api_key(environ: Mapping[str, str]) -> str:
    """The key the backend running with ``environ`` accepts (read as the backend reads it)."""
    return api_key(load_settings(environ)).reveal()


class BackendLink(QObject):
    """Runs a backend, keeps ``watchlist`` subscribed on it and hands on what it says.

    ``deliver_bus`` takes each monitoring message (topic, payload), ``deliver_feed`` each WebSocket
    API message, and ``show_record`` each log record read from the backend's stderr.
    """

    def __init__(
        self,
        watchlist: WatchlistModel,
        deliver_bus: BusDeliver,
        deliver_feed: FeedDeliver,
        show_record: Callable[[LogEntry], None],
        *,
        environment: Mapping[str, str] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.watchlist = watchlist
        self._deliver_bus = deliver_bus
        self._show_record = show_record
        self._log_merge = LogMerge()
        self.process = BackendProcess(environment, self)
        self.bus = BusMonitor(self._bus_message)
        self.feed = FeedClient(deliver_feed)
        self._restarts: set[asyncio.Task[None]] = set()
        self.process.state_changed.connect(self._state_changed)
        self.process.ready.connect(self._ready)
        self.process.output_line.connect(self._output)
        watchlist.symbols_added.connect(self.feed.subscribe)
        watchlist.symbols_removed.connect(self.feed.unsubscribe)

    def start(self) -> None:
        """Start the backend; the watchlist is subscribed once it is ready."""
        self.feed.subscribe(self.watchlist.entries())
        self.process.start()

    def restart(self) -> None:
        """Restart the backend (with the settings saved now)."""
        task = asyncio.ensure_future(self.process.restart())
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def stop(self) -> None:
        """Disconnect and stop the backend."""
        self.feed.close()
        self.bus.stop()
        await self.process.stop()

    def _state_changed(self, state: str) -> None:
        if state == STARTING:
            self._log_merge.new_run()
        if state != READY:
            self.feed.close()
            self.bus.stop()
            self._log_merge.bus_stopped()

    def _ready(self, endpoints: BackendEndpoints) -> None:
        try:
            key = client_api_key(self.process.environ())
        except SettingsError as exc:
            log.error("Cannot read the API key to connect to the backend: %s", exc)
            return
        self.bus.start(endpoints.zmq)
        self.feed.connect_to(endpoints.ws, key)

    def _bus_message(self, topic: str, payload: dict[str, Any]) -> None:
        if topic == LOG_TOPIC:
            sequence = payload.get("sequence")
            if not self._log_merge.from_bus(sequence if isinstance(sequence, int) else None):
                return
        self._deliver_bus(topic, payload)

    def _output(self, line: str) -> None:
        entry = entry_from_output(line)
        if self._log_merge.from_stderr(entry.sequence):
            self._show_record(entry)
