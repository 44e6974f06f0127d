"""Keeping the app connected to a backend: one it runs, or one it is attached to.

:class:`BackendLink` owns the app's ties to a backend: the :class:`BusMonitor` (gauges, log
records, health), the :class:`FeedClient` (the watchlist's subscriptions and ticks), and where
their endpoints come from. That is either

- a :class:`BackendProcess` the link runs: when a run is ready, the bus monitor and the feed are
  pointed at the endpoints its ready line names, with the key the backend's settings give, the
  certificate's fingerprint pinned (``wss://``) and a key pair of the app's own, allowed on the
  bus before the run starts (CURVE); or
- an :class:`~desktop.link.attachment.Attachment`: a backend the link did not start, at fixed
  endpoints, which it never starts, restarts or stops. The feed and the bus monitor reconnect to
  it by themselves after a drop.

Either way the feed subscribes the whole watchlist on every new connection, in its order, so
after a restart or a drop every row ticks again and the same rows hold the room as before; rows
added, given a new mode, asked for again and removed become subscribe and unsubscribe requests.
:attr:`BackendLink.state_changed` tells the state for people: the process's while the link runs
one, the feed's connection while it is attached. The link knows no window: it is given
the watchlist, and where bus messages, feed messages and the backend's stderr records go
(:func:`desktop.app.link_window` wires a window).

The backend's log records come both on its stderr and on ``SYS.LOG``; each is handed on once
(:class:`~desktop.link.log_merge.LogMerge`). A crash traceback, which never reaches the bus, is
logged with the reason the run ended (see :mod:`desktop.link.process`). An attached backend's
records come on the bus only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import zmq.auth
from msgspec import Struct
from PySide6.QtCore import QObject, Signal

from backend.bus.keys import KeyPair, allow_client
from backend.bus.messages import Ready
from backend.feed import LOG_TOPIC
from backend.runtime.settings import CURVE_ON, SettingsError, load_settings
from backend.security.api_key import api_key
from desktop.link.attachment import Attachment
from desktop.link.bus_monitor import BusDeliver, BusMonitor, CurveKeys
from desktop.link.feed_client import FeedClient, FeedDeliver
from desktop.link.log_merge import LogMerge
from desktop.link.process import READY, STARTING, BackendProcess
from desktop.logs.entry import LogEntry, entry_from_output
from desktop.watchlist.model import WatchlistModel

log = logging.getLogger("feedpool.desktop.backend")

#: The state of an attached backend before its feed's first connection.
CONNECTING = "connecting"
#: The name of the app's key pair on the CURVE bus of a backend it runs.
OWN_BUS_CLIENT = "desktop"


def client_api_key(environ: Mapping[str, str]) -> str:
    """The key the backend running with ``environ`` accepts (read as the backend reads it)."""
    return api_key(load_settings(environ)).reveal()


def own_bus_pair() -> KeyPair:
    """The app's key pair on the CURVE bus of a backend it runs (which shares its config dir),
    allowed there and made on first use, as ``python -m backend --allow-bus-client`` does."""
    return KeyPair(*zmq.auth.load_certificate(allow_client(OWN_BUS_CLIENT)["secret_key_file"]))


class BackendLink(QObject):
    """Keeps ``watchlist`` subscribed on a backend and hands on what it says: on a backend it
    runs (with ``environment`` added to this process's), or on ``attachment``.

    ``deliver_bus`` takes each monitoring message (topic, message), ``deliver_feed`` each WebSocket
    API message but the ticks ``watchlist`` takes as they come (``WatchlistModel.push_frame``), and
    ``show_record`` each log record read from the backend's stderr.
    """

    #: The backend's state (starting, ready, ... for a run; connecting, connected, reconnecting,
    #: failed when attached) and why, for people.
    state_changed = Signal(str, str)
    #: The link watches this :class:`~desktop.link.attachment.Attachment` from now on.
    attached = Signal(object)
    #: Why the bus does not serve the app (it refused the app's key, ...); ``""`` once it does.
    bus_refused = Signal(str)

    def __init__(
        self,
        watchlist: WatchlistModel,
        deliver_bus: BusDeliver,
        deliver_feed: FeedDeliver,
        show_record: Callable[[LogEntry], None],
        *,
        environment: Mapping[str, str] | None = None,
        attachment: Attachment | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.watchlist = watchlist
        self._deliver_bus = deliver_bus
        self._show_record = show_record
        self._log_merge = LogMerge()
        #: The backend the link runs; ``None`` when it is attached.
        self.process: BackendProcess | None = None
        #: The backend the link is attached to; ``None`` when it runs its own.
        self.attachment = attachment
        self.bus = BusMonitor(self._bus_message, self.bus_refused.emit)
        self.feed = FeedClient(deliver_feed, self._feed_state, watchlist.push_frame)
        self._tasks: set[asyncio.Task[None]] = set()
        self._own_bus_pair: KeyPair | None = None  # for the run of a backend with CURVE
        if attachment is None:
            self.process = BackendProcess(environment, self)
            self.process.state_changed.connect(self._process_state)
            self.process.ready.connect(self._ready)
            self.process.output_line.connect(self._output)
        watchlist.symbols_added.connect(self.feed.subscribe)
        watchlist.subscribe_again.connect(self.feed.subscribe)
        watchlist.symbols_removed.connect(self.feed.unsubscribe)

    def start(self) -> None:
        """Start the backend, or dial the attached one; the watchlist is subscribed once the
        feed is connected."""
        self.feed.subscribe(self.watchlist.entries())
        if self.process is not None:
            self.process.start()
        else:
            self._dial_attachment()

    def restart(self) -> None:
        """Restart the backend (with the settings saved now); an attached one is not the app's
        to restart."""
        if self.process is None:
            log.info("Attached to %s: nothing to restart", self.attachment.api_url)
            return
        self._run(self.process.restart())

    def attach(self, attachment: Attachment) -> None:
        """Watch ``attachment`` from now on; a backend the link runs is stopped first."""
        self._run(self._attach(attachment))

    async def stop(self) -> None:
        """Disconnect, and stop the backend if the link runs it: an attached one runs on."""
        self.feed.close()
        self.bus.stop()
        if self.process is not None:
            await self.process.stop()

    def _run(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _attach(self, attachment: Attachment) -> None:
        if self.process is not None:
            process, self.process = self.process, None
            await process.stop()
            process.deleteLater()
        self.attachment = attachment
        self._dial_attachment()

    def _dial_attachment(self) -> None:
        attachment = self.attachment
        self._log_merge.new_run()
        self.attached.emit(attachment)
        self.state_changed.emit(CONNECTING, attachment.api_url)
        try:
            self.bus.start(attachment.bus, attachment.bus_keys())
        except (OSError, ValueError) as exc:
            self.bus.stop()
            log.error("Cannot watch the bus at %s: %s", attachment.bus, exc)
        self.feed.connect_to(
            attachment.api_url,
            attachment.api_key.reveal(),
            pin=attachment.fingerprint,
            ca_file=attachment.ca_file,
        )

    def _feed_state(self, state: str, detail: str) -> None:
        if self.attachment is not None:
            self.state_changed.emit(state, detail)

    def _process_state(self, state: str, detail: str) -> None:
        if state == STARTING:
            self._log_merge.new_run()
            self._own_bus_pair = self._allow_own_bus_pair()
        if state != READY:
            self.feed.close()
            self.bus.stop()
            self._log_merge.bus_stopped()
        self.state_changed.emit(state, detail)

    def _allow_own_bus_pair(self) -> KeyPair | None:
        """The app's key pair when the run about to start has a CURVE bus, allowed before the
        run reads which keys to let in."""
        try:
            if load_settings(self.process.environ()).BUS_CURVE != CURVE_ON:
                return None
        except SettingsError:
            return None  # the run fails, saying why
        try:
            return own_bus_pair()
        except (OSError, ValueError) as exc:
            log.error("Cannot allow the app on the backend's CURVE bus: %s", exc)
            return None

    def _ready(self, ready: Ready) -> None:
        try:
            key = client_api_key(self.process.environ())
        except SettingsError as exc:
            log.error("Cannot read the API key to connect to the backend: %s", exc)
            return
        pair, server_key = self._own_bus_pair, ready.bus_public_key
        keys = CurveKeys(server_key.encode(), *pair) if pair and server_key else None
        self.bus.start(ready.zmq, keys)
        self.feed.connect_to(ready.ws, key, pin=ready.tls_fingerprint or "")

    def _bus_message(self, topic: str, message: Struct) -> None:
        if topic == LOG_TOPIC and not self._log_merge.from_bus(message.sequence):
            return
        self._deliver_bus(topic, message)

    def _output(self, line: str) -> None:
        entry = entry_from_output(line)
        if self._log_merge.from_stderr(entry.sequence):
            self._show_record(entry)
