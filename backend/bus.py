"""The ZeroMQ bus: one PUB socket per process that every tick and monitoring record goes out on.

Messages are two frames, ``[topic, JSON payload]``; the topics are in :mod:`backend.feed`
(``{EXCHANGE}_{SYMBOL}_{MODE}`` for ticks, ``SYS.*`` for monitoring). The publisher binds;
subscribers connect.

Socket options, chosen on purpose:

- ``SNDHWM`` = :data:`SEND_HIGH_WATER_MARK` messages per subscriber. A PUB socket never blocks:
  past the mark it drops messages for that subscriber only, so a stalled subscriber costs bounded
  memory and never slows the feed for anyone else.
- ``LINGER`` = :data:`LINGER_MS`. On close, queued messages get that long to leave, then are
  discarded, so shutting down never hangs on a subscriber that went away.
"""

from __future__ import annotations

import errno
import json
import logging
import threading
from typing import Any, ClassVar

import zmq

log = logging.getLogger("feedpool.bus")

SEND_HIGH_WATER_MARK = 100_000
LINGER_MS = 200
PORT_SEARCH_SPAN = 100


class BusBindError(OSError):
    """No port to bind the bus to."""


class ZmqPublisher:
    """A PUB socket bound to ``host:port``, or to the next free port above it when that is taken.

    ``port`` 0 lets the system choose. :attr:`endpoint` is what was bound. :meth:`publish` may be
    called from any thread.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 5555) -> None:
        self._context = zmq.Context.instance()
        self._socket = self._context.socket(zmq.PUB)
        self._socket.setsockopt(zmq.SNDHWM, SEND_HIGH_WATER_MARK)
        self._socket.setsockopt(zmq.LINGER, LINGER_MS)
        self._lock = threading.Lock()
        try:
            self.endpoint = self._bind(host, port)
        except BaseException:
            self._socket.close(linger=0)
            raise
        self.closed = False

    def _bind(self, host: str, port: int) -> str:
        if port == 0:
            self._socket.bind(f"tcp://{host}:*")
            return self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        for candidate in range(port, min(port + PORT_SEARCH_SPAN, 65536)):
            try:
                self._socket.bind(f"tcp://{host}:{candidate}")
            except zmq.ZMQError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise BusBindError(f"cannot bind the bus to {host}:{candidate}: {exc}") from exc
                continue
            if candidate != port:
                log.warning("Bus port %d is taken; bound %d instead", port, candidate)
            return self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        raise BusBindError(f"no free bus port on {host} from {port} to {candidate}")

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    def publish(self, topic: str, data: Any) -> None:
        """Send ``data`` as JSON on ``topic``. Thread-safe; never blocks on a slow subscriber."""
        payload = json.dumps(data, separators=(",", ":")).encode()
        with self._lock:
            if not self.closed:
                self._socket.send_multipart((topic.encode(), payload))

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                self._socket.close()


class SharedZmqPublisher(ZmqPublisher):
    """The process-wide publisher: :meth:`get` binds it on first use and returns it after."""

    _instance: ClassVar[SharedZmqPublisher | None] = None
    _instance_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def get(cls, host: str = "127.0.0.1", port: int = 5555) -> SharedZmqPublisher:
        with cls._instance_lock:
            if cls._instance is None or cls._instance.closed:
                cls._instance = cls(host, port)
                log.info("Bus publishing on %s", cls._instance.endpoint)
            return cls._instance

    @classmethod
    def current(cls) -> SharedZmqPublisher | None:
        """The shared publisher if one is open."""
        instance = cls._instance
        return instance if instance is not None and not instance.closed else None
