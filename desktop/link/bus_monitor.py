"""The app's view of the bus: a ZeroMQ SUB to the backend's monitoring topics (``SYS.``).

It runs on the app's asyncio loop (qasync) through :mod:`zmq.asyncio` and hands each message,
decoded, to ``deliver(topic, payload)``. No tick reaches it: it subscribes to the ``SYS.`` prefix
only, and the publisher filters by prefix before sending.

ZeroMQ keeps the socket connected: after a drop it dials again, waiting longer after each failed
attempt (:data:`RECONNECT_MS` doubling up to :data:`RECONNECT_MAX_MS`), and subscribes again.
Heartbeats (:data:`HEARTBEAT_MS`) find a connection that went silent without closing, as one
across a network that dropped does. A bus secured with CURVE is read with :class:`CurveKeys`: the
server's public key and the app's own key pair, set before the socket connects. A bus that refuses
the app's key is not dialled again by ZeroMQ; the refusal is logged with its remedy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from backend.feed import SYSTEM_PREFIX

log = logging.getLogger("feedpool.desktop.bus")

BusDeliver = Callable[[str, dict[str, Any]], None]

RECONNECT_MS = 500
RECONNECT_MAX_MS = 5_000
HEARTBEAT_MS = 5_000
HEARTBEAT_TIMEOUT_MS = 15_000


@dataclass(frozen=True, slots=True)
class CurveKeys:
    """The CURVE keys of a secured bus, Z85-encoded: the server's public key, the app's pair."""

    server: bytes
    public: bytes
    secret: bytes = field(repr=False)


class BusMonitor:
    """Reads one backend's monitoring topics until :meth:`stop` or the next :meth:`start`."""

    def __init__(self, deliver: BusDeliver) -> None:
        self._deliver = deliver
        self._socket: zmq.asyncio.Socket | None = None
        self._monitor: zmq.asyncio.Socket | None = None  # the socket's handshake refusals
        self._tasks: list[asyncio.Task[None]] = []
        #: A message has arrived since the last :meth:`start`.
        self.delivering = False

    def start(self, endpoint: str, keys: CurveKeys | None = None) -> None:
        """Read the bus at ``endpoint`` (``tcp://host:port``), instead of any other; with
        ``keys``, over CURVE."""
        self.stop()
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
        socket.connect(endpoint)
        self._socket = socket
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read(socket))]
        if keys is not None:
            self._monitor = socket.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_AUTH)
            self._monitor.setsockopt(zmq.LINGER, 0)
            self._tasks.append(loop.create_task(self._log_refusal(self._monitor, endpoint)))

    def stop(self) -> None:
        self.delivering = False
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        for socket in (self._monitor, self._socket):
            if socket is not None:
                socket.close()
        self._monitor = self._socket = None

    @staticmethod
    async def _log_refusal(monitor: zmq.asyncio.Socket, endpoint: str) -> None:
        event = parse_monitor_message(await monitor.recv_multipart())
        log.error(
            "The bus at %s refused this app's CURVE key (status %d): allow it on the backend's"
            " machine (python -m backend --allow-bus-client NAME) and attach again",
            endpoint,
            event["value"],
        )

    async def _read(self, socket: zmq.asyncio.Socket) -> None:
        while True:
            frames = await socket.recv_multipart()
            try:
                topic, payload = frames[0].decode(), orjson.loads(frames[1])
            except (IndexError, UnicodeDecodeError, ValueError):
                log.warning("Ignored a malformed bus message")
                continue
            if not isinstance(payload, dict):
                log.warning("Ignored a %s message that is not a JSON object", topic)
                continue
            self.delivering = True
            try:
                self._deliver(topic, payload)
            except Exception:  # one bad message must not stop the monitoring
                log.exception("Could not show a %s message", topic)
