"""Who may subscribe to a CURVE bus: pyzmq's ZAP authenticator, asking the allowed keys' folder.

With ``BUS_CURVE=on`` the bus's socket is a CURVE server, and ZeroMQ asks this authenticator
about every subscriber's handshake. It allows the public keys in
:func:`~backend.bus.keys.allowed_clients_dir` (``*.key`` certificate files) and refuses any other
key, and a subscriber without CURVE gets no handshake at all: a refused subscriber receives
nothing. ZeroMQ does not dial again after a refusal; the app's bus monitor does
(:mod:`desktop.link.bus_monitor`).

The authenticator runs in a thread of its own (pyzmq's ``ThreadAuthenticator``) on the
process's ZeroMQ context, the publisher's, which is used from several threads. It decides each
handshake with the folder as it is then (:meth:`BusGuard.callback`, through
:class:`~backend.bus.keys.AllowedKeys`: a listing of the folder, about 10 microseconds with one
key and 40 with ten, the files read only after a change), so a key that ``--allow-bus-client``
adds lets its subscriber in at once. A key whose file is deleted is revoked:
:meth:`BusGuard.watch` looks every :data:`REFRESH_SECONDS`, and when a key that was let in is
gone it has the publisher close every connection
(:meth:`~backend.bus.publisher.ZmqPublisher.reconnect_subscribers`): the allowed subscribers are
back within about 0.2 s, and the revoked one is refused, about :data:`REFRESH_SECONDS` after its
key went.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import zmq
from zmq.auth.thread import ThreadAuthenticator

from backend.bus.keys import AllowedKeys
from backend.bus.publisher import BusBindError
from backend.security.private_files import private_dir

log = logging.getLogger("feedpool.bus")

REFRESH_SECONDS = 1.0
#: Every ZAP domain.
ANY_DOMAIN = "*"


class BusGuard:
    """Allows the keys in ``directory`` on every CURVE socket of ``context``."""

    def __init__(self, context: zmq.Context, directory: Path) -> None:
        self.directory = directory
        self._authenticator = ThreadAuthenticator(context, log=log.getChild("auth"))
        self._keys = AllowedKeys(directory)
        #: The keys allowed when :meth:`watch` last looked.
        self._seen: frozenset[bytes] = frozenset()
        #: The keys let in since their connections were last closed.
        self._admitted: set[bytes] = set()
        self._lock = threading.Lock()

    @property
    def allowed(self) -> int:
        """How many client keys are allowed."""
        return len(self._keys.current())

    def start(self) -> None:
        """Answer ZeroMQ's questions from now on."""
        private_dir(self.directory)
        self._seen = self._keys.current()
        self._authenticator.start()
        self._authenticator.configure_curve_callback(ANY_DOMAIN, self)

    def callback(self, domain: str, key: bytes) -> bool:
        """Whether the subscriber with ``key`` (Z85) is allowed now: the authenticator asks."""
        allowed = key in self._keys.current()
        if allowed:
            with self._lock:
                self._admitted.add(key)
        return allowed

    async def watch(self, reconnect_subscribers: Callable[[], None]) -> None:
        """Every :data:`REFRESH_SECONDS` until cancelled: when a key that was let in is no longer
        allowed, ``reconnect_subscribers()`` (in a thread), for every connection to be let in
        anew."""
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            keys = self._keys.current()
            if keys != self._seen:
                self._seen = keys
                log.info("Bus clients changed: %d keys allowed in %s", len(keys), self.directory)
            with self._lock:
                revoked = self._admitted - keys
                self._admitted -= revoked
            if not revoked:
                continue
            log.warning(
                "%d bus client keys revoked: every subscriber reconnects, and theirs are refused",
                len(revoked),
            )
            try:
                await asyncio.to_thread(reconnect_subscribers)
            except BusBindError as exc:
                log.error("The bus stopped publishing: %s", exc)
                return

    def stop(self) -> None:
        self._authenticator.stop()
