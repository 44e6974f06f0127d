"""What every broker connection offers the pool, and how it finds the bus it publishes on.

A :class:`BrokerAdapter` is one market-data connection to a broker. It keeps the set of
instruments it holds (each at one mode), publishes their ticks, and reconnects on its own, holding
the same set afterwards.

An adapter built by the pool is built inside :func:`pooled_creation`, a thread-local context that
hands it the shared publisher; an adapter built alone opens a publisher of its own and closes it
with itself.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from backend.bus import HEALTH_TOPIC, ZmqPublisher
from backend.instruments import Instrument

CONNECTING, CONNECTED, RECONNECTING, DOWN = "connecting", "connected", "reconnecting", "down"

_creation = threading.local()


@contextlib.contextmanager
def pooled_creation(publisher: ZmqPublisher) -> Iterator[None]:
    """Adapters built in this block, on this thread, publish on ``publisher``."""
    previous = getattr(_creation, "publisher", None)
    _creation.publisher = publisher
    try:
        yield
    finally:
        _creation.publisher = previous


def pooled_publisher() -> ZmqPublisher | None:
    """The publisher of the enclosing :func:`pooled_creation` block on this thread, if any."""
    return getattr(_creation, "publisher", None)


class BrokerError(Exception):
    """The broker refused or failed a request. ``code`` is the client API's error code."""

    code = "BROKER_ERROR"


class BrokerConnectionError(BrokerError):
    """The broker could not be reached, or refused the connection."""

    code = "BROKER_CONNECTION_ERROR"


class ConnectionLimitError(BrokerConnectionError):
    """The broker refused a connection because the account has as many as it allows."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """An instrument the broker would not subscribe, and why."""

    instrument: Instrument
    code: str  # e.g. E1002
    message: str

    @property
    def is_capacity(self) -> bool:
        return self.code == "E1002"


StateListener = Callable[["BrokerAdapter", str, str], None]
RefusalListener = Callable[["BrokerAdapter", list[Refusal]], None]


class BrokerAdapter(ABC):
    """One pooled broker connection. Subclasses speak one broker's protocol."""

    broker = "broker"

    def __init__(self, index: int, publisher: ZmqPublisher | None = None) -> None:
        self.index = index
        shared = publisher or pooled_publisher()
        self._owns_publisher = shared is None
        self.publisher = shared or ZmqPublisher(port=0)
        self.state = CONNECTING
        self.state_reason = ""
        self.ticks_received = 0
        self.last_tick_at = 0.0  # time.monotonic() of the newest tick
        self.state_listeners: list[StateListener] = []
        #: Told when a reconnect could not subscribe again everything the connection held.
        self.refusal_listeners: list[RefusalListener] = []
        self.log = logging.LoggerAdapter(
            logging.getLogger(f"feedpool.{self.broker}"), {"connection": index}
        )

    @property
    @abstractmethod
    def held(self) -> dict[tuple[int, str], tuple[Instrument, int]]:
        """``(exchange type, token) -> (instrument, mode)`` for everything this connection holds."""

    @abstractmethod
    async def connect(self) -> None:
        """Open the connection; :class:`BrokerConnectionError` if the broker is unreachable."""

    @abstractmethod
    async def hold(self, instruments: Sequence[Instrument], mode: int) -> list[Refusal]:
        """Hold each instrument at ``mode`` (subscribing it, or moving it to ``mode``).

        Returns the instruments the broker refused; those are not held afterwards.
        """

    @abstractmethod
    async def release(self, instruments: Sequence[Instrument]) -> None:
        """Stop holding the instruments (unsubscribing them at the mode they are held in)."""

    async def close(self) -> None:
        """Close the connection and, if the adapter opened its own, its publisher."""
        if self._owns_publisher:
            self.publisher.close()

    def set_state(self, state: str, reason: str = "") -> None:
        """Record a state change, publish it on ``SYS.HEALTH`` and tell the listeners."""
        if state == self.state and reason == self.state_reason:
            return
        self.state, self.state_reason = state, reason
        self.publisher.publish(HEALTH_TOPIC, self.health())
        for listener in self.state_listeners:
            listener(self, state, reason)

    def health(self) -> dict[str, Any]:
        return {
            "component": "connection",
            "connection": self.index,
            "state": self.state,
            "reason": self.state_reason,
            "time": time.time(),
        }
