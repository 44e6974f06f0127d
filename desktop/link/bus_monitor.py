"""The app's view of the bus: a ZeroMQ SUB to the backend's monitoring topics (``SYS.``).

It runs on the app's asyncio loop (qasync) through :mod:`zmq.asyncio` and hands each message,
decoded to its type (:func:`backend.bus.messages.decode`), to ``deliver(topic, message)``. A
message that does not match its type is logged as an error naming the topic and the field, and
not delivered, so what it would have changed stays as it was; a topic the app does not know is
skipped. No tick reaches it: it subscribes to the ``SYS.`` prefix only, and the publisher filters
by prefix before sending.

ZeroMQ keeps the socket connected: after a drop it dials again, waiting longer after each failed
attempt (:data:`RECONNECT_MS` doubling up to :data:`RECONNECT_MAX_MS`), and subscribes again.
Heartbeats (:data:`HEARTBEAT_MS`) find a connection that went silent without closing, as one
across a network that dropped does. A bus secured with CURVE is read with :class:`CurveKeys`: the
server's public key and the app's own key pair, set before the socket connects.

The socket's handshakes are watched (a socket monitor, attached before the socket connects, so
that none goes unseen however fast it is). A bus that refuses the app's key, or whose handshake
fails (the server key is not the bus's), is reported with its remedy in
:attr:`BusMonitor.refusal`, logged, and told to ``report``; a handshake that succeeds clears it.
ZeroMQ dials again after a failed handshake but never after a refusal, so then the monitor opens a
new socket after :data:`REFUSED_RETRY_SECONDS` (longer after each refusal in a row): a key
allowed later lets the app in within seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import zmq
import zmq.asyncio
from msgspec import Struct
from zmq.utils.monitor import recv_monitor_message

from backend.bus.messages import MalformedMessage, decode
from backend.feed import SYSTEM_PREFIX

log = logging.getLogger("feedpool.desktop.bus")

#: Takes each monitoring message: its topic, and the message as its type.
BusDeliver = Callable[[str, Struct], None]
#: Told why the bus does not serve the app, and ``""`` once it does again.
BusReport = Callable[[str], None]

RECONNECT_MS = 500
RECONNECT_MAX_MS = 5_000
HEARTBEAT_MS = 5_000
HEARTBEAT_TIMEOUT_MS = 15_000
#: The waits before a new socket after the first refusal, the second, ... in a row.
REFUSED_RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)
#: Each monitor's inproc address, never used twice in the process. pyzmq's default names it after
#: the socket's file descriptor, which a new socket may reuse while the closed one's monitor
#: still holds the name: the new monitor's bind then fails, and the app reads no bus.
MONITOR_ADDRESSES = (f"inproc://feedpool-bus-monitor-{n}" for n in itertools.count())
REFUSED = (
    "the bus refused this app's key: allow it on the backend's machine"
    " (python -m backend --allow-bus-client NAME)"
)
NO_HANDSHAKE = (
    "the bus's CURVE handshake failed: check the bus server key (the backend's bus_public_key)"
)
#: What the monitor tells, by handshake event: why the bus does not serve the app, or ``""``.
HANDSHAKES = {
    zmq.EVENT_HANDSHAKE_SUCCEEDED: "",
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: REFUSED,
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: NO_HANDSHAKE,
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: NO_HANDSHAKE,
}
#: The events after which ZeroMQ does not dial again by itself.
FINAL = {zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL}


@dataclass(frozen=True, slots=True)
class CurveKeys:
    """The CURVE keys of a secured bus, Z85-encoded: the server's public key, the app's pair."""

    server: bytes
    public: bytes
    secret: bytes = field(repr=False)


class BusMonitor:
    """Reads one backend's monitoring topics until :meth:`stop` or the next :meth:`start`."""

    def __init__(self, deliver: BusDeliver, report: BusReport | None = None) -> None:
        self._deliver = deliver
        self._report = report or (lambda refusal: None)
        self._socket: zmq.asyncio.Socket | None = None
        self._monitor: zmq.asyncio.Socket | None = None  # the socket's handshakes
        self._task: asyncio.Task[None] | None = None
        #: A message has arrived since the last :meth:`start`.
        self.delivering = False
        #: Why the bus does not serve the app (see :data:`HANDSHAKES`); empty while it does.
        self.refusal = ""

    def start(self, endpoint: str, keys: CurveKeys | None = None) -> None:
        """Read the bus at ``endpoint`` (``tcp://host:port``), instead of any other; with
        ``keys``, over CURVE."""
        self.stop()
        self._open(endpoint, keys)
        self._task = asyncio.get_running_loop().create_task(self._serve(endpoint, keys))

    def stop(self) -> None:
        self.delivering = False
        if self._task is not None:
            self._task.cancel()
            self._task = None
        for socket in (self._monitor, self._socket):
            if socket is not None:
                socket.close()
        self._monitor = self._socket = None
        if self.refusal:
            self._tell("")

    def _open(self, endpoint: str, keys: CurveKeys | None) -> None:
        socket = zmq.asyncio.Context.instance().socket(zmq.SUB)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)
        socket.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_MAX_MS)
        socket.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_MS)
        socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
        if keys is not None:
            socket.curve_serverkey = keys.server
            socket.curve_publickey = keys.public
            socket.curve_secretkey = keys.secret
        socket.setsockopt(zmq.SUBSCRIBE, SYSTEM_PREFIX.encode())
        self._monitor = socket.get_monitor_socket(sum(HANDSHAKES), next(MONITOR_ADDRESSES))
        self._monitor.setsockopt(zmq.LINGER, 0)
        socket.connect(endpoint)
        self._socket = socket

    async def _serve(self, endpoint: str, keys: CurveKeys | None) -> None:
        """Read the bus; after each refusal, wait and read it on a new socket."""
        refusals = 0
        while True:
            socket, monitor = self._socket, self._monitor
            reading = asyncio.ensure_future(self._read(socket))
            try:
                if await self._watch(monitor, endpoint):
                    refusals = 0
            finally:
                reading.cancel()
                monitor.close()
                socket.close()
            waits = REFUSED_RETRY_SECONDS
            await asyncio.sleep(waits[min(refusals, len(waits) - 1)])
            refusals += 1
            self._open(endpoint, keys)

    async def _watch(self, monitor: zmq.asyncio.Socket, endpoint: str) -> bool:
        """Tell each handshake's outcome until the bus refuses the app; whether one succeeded
        before that."""
        served = False
        while True:
            event = (await recv_monitor_message(monitor))["event"]
            refusal = HANDSHAKES[event]
            if refusal != self.refusal:
                if refusal:
                    log.error("Bus %s: %s", endpoint, refusal)
                else:
                    log.info("Bus %s: the bus lets this app in", endpoint)
                self._tell(refusal)
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                served = True
            elif event in FINAL:
                return served

    def _tell(self, refusal: str) -> None:
        self.refusal = refusal
        self._report(refusal)

    async def _read(self, socket: zmq.asyncio.Socket) -> None:
        while True:
            frames = await socket.recv_multipart()
            try:
                topic = frames[0].decode()
                message = decode(topic, frames[1])
            except (IndexError, UnicodeDecodeError):
                log.error("Ignored a bus message that is not [topic, payload]")
                continue
            except MalformedMessage as exc:
                log.error("Ignored a %s", exc)
                continue
            if message is None:
                continue
            self.delivering = True
            try:
                self._deliver(topic, message)
            except Exception:  # one bad message must not stop the monitoring
                log.exception("Could not show a %s message", topic)
