"""Who may subscribe to a CURVE bus: pyzmq's ZAP authenticator over the allowed keys' folder.

With ``BUS_CURVE=on`` the bus's socket is a CURVE server, and ZeroMQ asks this authenticator
about every subscriber's handshake. It allows the public keys in
:func:`~backend.bus_keys.allowed_clients_dir` (``*.key`` certificate files) and refuses any other
key, and a subscriber without CURVE gets no handshake at all: a refused subscriber receives
nothing.

The authenticator runs in a thread of its own (pyzmq's ``ThreadAuthenticator``) on the
process's ZeroMQ context, the publisher's, which is used from several threads. pyzmq reads the
folder only when told to, so :meth:`BusGuard.watch` looks at it every
:data:`REFRESH_SECONDS` and has it read again when a file came, went or changed: a key that
``--allow-bus-client`` adds lets its subscriber in within a second. A removed key refuses that
subscriber's next connection; one already connected stays until it disconnects.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import zmq
from zmq.auth.thread import ThreadAuthenticator

from backend.bus_keys import PUBLIC_SUFFIX
from backend.private_files import private_dir

log = logging.getLogger("feedpool.bus")

REFRESH_SECONDS = 1.0
#: Every ZAP domain.
ANY_DOMAIN = "*"


class BusGuard:
    """Allows the keys in ``directory`` on every CURVE socket of ``context``."""

    def __init__(self, context: zmq.Context, directory: Path) -> None:
        self.directory = directory
        self._authenticator = ThreadAuthenticator(context, log=log.getChild("auth"))
        self._listing: frozenset[tuple[str, int]] | None = None

    @property
    def allowed(self) -> int:
        """How many client keys are allowed."""
        return len(self._authenticator.certs.get(ANY_DOMAIN, {}))

    def start(self) -> None:
        """Answer ZeroMQ's questions from now on, with the keys in the folder now."""
        private_dir(self.directory)
        self._authenticator.start()
        self.refresh()

    def refresh(self) -> None:
        """Read the folder again if it changed since the last read."""
        listing = self._read_listing()
        if listing == self._listing:
            return
        self._authenticator.configure_curve(domain=ANY_DOMAIN, location=str(self.directory))
        changed = self._listing is not None
        self._listing = listing
        if changed:
            log.info("Bus clients changed: %d keys allowed in %s", self.allowed, self.directory)

    async def watch(self) -> None:
        """:meth:`refresh` every :data:`REFRESH_SECONDS`, until cancelled."""
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            self.refresh()

    def stop(self) -> None:
        self._authenticator.stop()

    def _read_listing(self) -> frozenset[tuple[str, int]]:
        """The key files' names and modification times."""
        try:
            with os.scandir(self.directory) as entries:
                return frozenset(
                    (entry.name, entry.stat().st_mtime_ns)
                    for entry in entries
                    if entry.name.endswith(PUBLIC_SUFFIX)
                )
        except FileNotFoundError:
            return frozenset()
