"""Per-address limits of the client API: connections open at once, and wrong API keys.

A client API open to other machines meets clients it does not know, so each remote address
(the host part of the peer; loopback is an address like any other) is held to two bounds:

- :class:`ConnectionLimit`: at most ``MAX_CLIENTS_PER_ADDRESS`` connections open at once. The
  default, :data:`MAX_CLIENTS_PER_ADDRESS`, leaves room for the desktop app and many local
  strategies on 127.0.0.1.
- :class:`AuthBackoff`: after ``AUTH_FAILURES_BEFORE_DELAY`` wrong API keys from an address,
  each ``authenticate`` from it waits before its key is checked: :data:`FIRST_AUTH_DELAY`,
  doubled with each further failure, up to :data:`MAX_AUTH_DELAY`. The wait comes before the
  check and whatever the key, so a guess costs the wait and cannot be cut short once its verdict
  is known; the right key then clears the address's failures. An address's failures are
  forgotten :data:`FAILURE_MEMORY` seconds after its last, and at most
  :data:`REMEMBERED_ADDRESSES` are remembered (the longest quiet go first).

Other addresses are never slowed or refused for one address's doings.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

#: Defaults of the settings ``MAX_CLIENTS_PER_ADDRESS`` and ``AUTH_FAILURES_BEFORE_DELAY``.
MAX_CLIENTS_PER_ADDRESS = 64
AUTH_FAILURES_BEFORE_DELAY = 5
#: The wait of the first authentication past the free failures, and the longest wait.
FIRST_AUTH_DELAY = 0.5
MAX_AUTH_DELAY = 8.0
#: Seconds after its last failure when an address's failures are forgotten.
FAILURE_MEMORY = 600.0
REMEMBERED_ADDRESSES = 10_000


class ConnectionLimit:
    """Connections open per address, at most ``limit`` each."""

    def __init__(self, limit: int = MAX_CLIENTS_PER_ADDRESS) -> None:
        self.limit = limit
        #: Connections refused for being past the limit.
        self.refused = 0
        self._open: Counter[str] = Counter()

    def admit(self, address: str) -> bool:
        """Count a new connection from ``address``; False (and counted as refused) past the
        limit."""
        if self._open[address] >= self.limit:
            self.refused += 1
            return False
        self._open[address] += 1
        return True

    def release(self, address: str) -> None:
        """An admitted connection from ``address`` closed."""
        self._open[address] -= 1
        if not self._open[address]:
            del self._open[address]


class AuthBackoff:
    """Wrong API keys by address, and how long that address's authentications wait."""

    def __init__(
        self,
        free_failures: int = AUTH_FAILURES_BEFORE_DELAY,
        first_delay: float = FIRST_AUTH_DELAY,
    ) -> None:
        self.free_failures = free_failures
        self.first_delay = first_delay
        #: Wrong keys, and authentications made to wait.
        self.failures = 0
        self.delayed = 0
        #: address -> (failures, monotonic time of the last), the longest quiet first.
        self._failed: dict[str, tuple[int, float]] = {}

    def delay(self, address: str) -> float:
        """Seconds an authentication from ``address`` waits before its key is checked."""
        extra = self._count(address) - self.free_failures
        if extra < 0:
            return 0.0
        return min(MAX_AUTH_DELAY, self.first_delay * 2 ** min(extra, 32))

    async def wait(self, address: str) -> float:
        """Wait as long as an authentication from ``address`` must; how long that was."""
        delay = self.delay(address)
        if delay:
            self.delayed += 1
            await asyncio.sleep(delay)
        return delay

    def failed(self, address: str) -> None:
        """A wrong key from ``address``."""
        self.failures += 1
        count = self._count(address) + 1
        self._failed.pop(address, None)
        now = time.monotonic()
        self._failed[address] = (count, now)
        while True:  # ends at the latest at ``address``, just failed
            oldest, (_, last) = next(iter(self._failed.items()))
            if len(self._failed) <= REMEMBERED_ADDRESSES and now - last < FAILURE_MEMORY:
                return
            del self._failed[oldest]

    def succeeded(self, address: str) -> None:
        """The right key from ``address``: its failures are forgotten."""
        self._failed.pop(address, None)

    def _count(self, address: str) -> int:
        count, last = self._failed.get(address, (0, 0.0))
        return count if time.monotonic() - last < FAILURE_MEMORY else 0
