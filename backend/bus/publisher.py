"""The ZeroMQ bus: one XPUB socket per process that every tick and monitoring record goes out on.

Messages are two frames, ``[topic, JSON payload]``; the topics are in :mod:`backend.feed`
(``{EXCHANGE}_{SYMBOL}_{MODE}`` for ticks, ``SYS.*`` for monitoring). The publisher binds;
subscribers connect.

Ticks take two roads from :meth:`ZmqPublisher.publish_tick`. Inside the process they go straight
to the :attr:`~ZmqPublisher.tick_listener` (the client API), with no socket in between. On the
socket they go out only to topics an outside subscriber asked for: an XPUB socket hears every
subscription, so a tick nobody outside wants costs no send. Payloads are serialised once: a tick's
dict with orjson, a monitoring message (a :mod:`backend.bus.messages` type) with msgspec.

Socket options, chosen on purpose:

- ``SNDHWM`` = :data:`SEND_HIGH_WATER_MARK` messages per subscriber. The socket never blocks:
  past the mark it drops messages for that subscriber only, so a stalled subscriber costs bounded
  memory and never slows the feed for anyone else.
- ``LINGER`` = :data:`LINGER_MS`. On close, queued messages get that long to leave, then are
  discarded, so shutting down never hangs on a subscriber that went away.

Given a CURVE key pair, the socket is a CURVE server: the bus is encrypted, and ZeroMQ asks the
process's ZAP authenticator (:mod:`backend.bus.guard`) which subscribers' keys to let in, at each
subscriber's handshake. An XPUB socket cannot close one subscriber's connection, so when a key is
revoked :meth:`ZmqPublisher.reconnect_subscribers` closes them all: it unbinds the endpoint (which
closes every connection accepted on it; the socket finishes closing them when it next publishes)
and binds it again. Each subscriber dials again (ZeroMQ's reconnect interval, 100 ms by default)
and shakes hands anew: the allowed ones receive again within about 0.2 s, having missed what was
published meanwhile, and the revoked ones are refused. The rebinding takes a millisecond or two
with ten subscribers; the port may stay taken for a few milliseconds more (up to 40 on a loaded
machine) until the closed listener is gone, so binding is retried every :data:`REBIND_PAUSE`
for up to :data:`REBIND_SECONDS`, without holding up publishers.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

import msgspec
import orjson
import zmq

log = logging.getLogger("feedpool.bus")

SEND_HIGH_WATER_MARK = 100_000
LINGER_MS = 200
#: How often, at most, the publisher looks for new subscriptions (seconds).
SUBSCRIPTIONS_CHECK = 0.01
PORT_SEARCH_SPAN = 100
#: How long :meth:`ZmqPublisher.reconnect_subscribers` tries to bind its port again, and how often.
REBIND_SECONDS, REBIND_PAUSE = 1.0, 0.001


class BusBindError(OSError):
    """No port to bind the bus to."""


#: Takes each tick inside the process: ``(topic, payload)``, both bytes.
TickListener = Callable[[bytes, bytes], None]


class ZmqPublisher:
    """An XPUB socket bound to ``host:port``, or the next free port above it when that is taken.

    ``port`` 0 lets the system choose. :attr:`endpoint` is what was bound. ``curve_keys``
    (public, secret), Z85-encoded, make it a CURVE server. :meth:`publish` may be called from any
    thread; :meth:`publish_tick` from the event loop's, where the adapters run.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5555,
        curve_keys: tuple[bytes, bytes] | None = None,
    ) -> None:
        self._context = zmq.Context.instance()
        self._socket = self._context.socket(zmq.XPUB)
        self._socket.setsockopt(zmq.SNDHWM, SEND_HIGH_WATER_MARK)
        self._socket.setsockopt(zmq.LINGER, LINGER_MS)
        if curve_keys is not None:
            self._socket.curve_publickey, self._socket.curve_secretkey = curve_keys
            self._socket.curve_server = True
        self._lock = threading.Lock()
        #: The prefixes outside subscribers asked for, and whether each topic matches one.
        self._prefixes: set[bytes] = set()
        self._wanted: dict[bytes, bool] = {}
        self._checked_at = 0.0
        #: Where ticks go inside the process, if anywhere.
        self.tick_listener: TickListener | None = None
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

    def publish(self, topic: str, message: Any) -> None:
        """Send ``message`` (a :mod:`backend.bus.messages` type, or any data msgspec encodes) as
        JSON on ``topic``. Thread-safe; never blocks on a slow subscriber."""
        self._send(topic.encode(), msgspec.json.encode(message))

    def publish_tick(self, topic: bytes, tick: dict[str, Any]) -> None:
        """Hand a tick to the process's listener, and send it if someone outside wants it."""
        payload = orjson.dumps(tick)
        listener = self.tick_listener
        if listener is not None:
            listener(topic, payload)
        # Without the lock: a topic nobody outside wants, with no look at subscriptions due.
        if self._wanted.get(topic) is False and (
            time.monotonic() - self._checked_at <= SUBSCRIPTIONS_CHECK
        ):
            return
        self._send(topic, payload)

    def _send(self, topic: bytes, payload: bytes) -> None:
        with self._lock:
            if self.closed:
                return
            socket = self._socket
            now = time.monotonic()
            if now - self._checked_at > SUBSCRIPTIONS_CHECK:
                self._checked_at = now
                if socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    self._hear_subscriptions()
            wanted = self._wanted.get(topic)
            if wanted is None:
                wanted = self._wanted[topic] = any(map(topic.startswith, self._prefixes))
            if wanted:
                socket.send_multipart((topic, payload))

    def _hear_subscriptions(self) -> None:
        """Take in the subscriptions and unsubscriptions the XPUB socket has heard."""
        while True:
            try:
                message = self._socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            if message[:1] == b"\x01":
                self._prefixes.add(message[1:])
            elif message[:1] == b"\x00":
                self._prefixes.discard(message[1:])
        self._wanted.clear()

    def reconnect_subscribers(self) -> None:
        """Close every subscriber's connection, for each to dial again and be let in anew.

        Blocks (up to :data:`REBIND_SECONDS`) until the endpoint is bound again;
        :class:`BusBindError` if it cannot be.
        """
        with self._lock:
            if self.closed:
                return
            self._socket.unbind(self.endpoint)
        deadline = time.monotonic() + REBIND_SECONDS
        while True:
            with self._lock:
                if self.closed:
                    return
                try:
                    self._socket.bind(self.endpoint)
                    return
                except zmq.ZMQError as exc:  # EADDRINUSE until the old listener is closed
                    if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                        raise BusBindError(
                            f"cannot bind the bus to {self.endpoint} again: {exc}"
                        ) from exc
            time.sleep(REBIND_PAUSE)

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
    def get(
        cls,
        host: str = "127.0.0.1",
        port: int = 5555,
        curve_keys: tuple[bytes, bytes] | None = None,
    ) -> SharedZmqPublisher:
        with cls._instance_lock:
            if cls._instance is None or cls._instance.closed:
                cls._instance = cls(host, port, curve_keys)
                log.info("Bus publishing on %s", cls._instance.endpoint)
            return cls._instance

    @classmethod
    def current(cls) -> SharedZmqPublisher | None:
        """The shared publisher if one is open."""
        instance = cls._instance
        return instance if instance is not None and not instance.closed else None
