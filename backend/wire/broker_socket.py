"""The picows socket a broker connection reads: messages handed over as they are parsed.

:func:`open_websocket` connects a :class:`BrokerSocket` with protocol pings that find a server
frozen with the connection open, and reports what kept it from opening as :class:`UpgradeRefused`
(the server answered the handshake with an HTTP status) or :class:`Unreachable`. Neither names
the URL, which may carry credentials: the caller says whom it could not reach.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import picows

from backend.logs.faults import FaultLog
from backend.wire.joiner import MessageJoiner, MessageTooBig

OPEN_TIMEOUT = 10.0
#: A WebSocket ping goes out after this long without data from the broker ...
KEEPALIVE_IDLE_SECONDS = 3.0
#: ... and the connection is given up when its pong has not come this long after: a broker that
#: froze with the connection open is found within about 6 s, ticking or not.
KEEPALIVE_REPLY_SECONDS = 3.0
MAX_FRAME_BYTES = 2**20

#: picows's own records (a line per connection at INFO, the upgrade request below DEBUG) stay
#: below the adapters'.
WIRE_LOG = logging.getLogger("feedpool.broker.wire")
WIRE_LOG.setLevel(logging.WARNING)


class UpgradeRefused(Exception):
    """The server answered the opening handshake with HTTP ``status`` instead of switching
    protocols; ``reason`` is its ``x-error-message`` header, or else the status's phrase."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason}")
        self.status = status
        self.reason = reason


class Unreachable(Exception):
    """The server could not be reached, or the handshake did not complete; the message says
    why."""


def _ignore(*_: Any) -> None:
    pass


def close_details(received: Any) -> str:
    """A broker's close frame (picows's ``WSCloseInfo``) in words: ``code 1008, Session
    expired``, ``code 1000, no reason given``, or for an empty frame (code 0) ``no code or
    reason given``."""
    if not received.code:
        return "no code or reason given"
    return f"code {int(received.code)}, {(received.reason or '').strip() or 'no reason given'}"


class BrokerSocket(picows.WSListener):
    """One WebSocket to a broker: each message in to ``on_message``; text requests out.

    picows calls :meth:`on_ws_frame` for every frame as it is parsed, so a tick goes from the
    socket's buffer to the adapter without a queue or a task switch. ``on_read()`` is called
    once the frames of one read from the socket are all handed over; ``on_lost(socket, reason)``
    hears when the connection ends.

    A message whose handling raises is dropped, counted in :attr:`messages_dropped` and reported
    to ``faults``; the connection goes on. A message of continuation frames that passes
    :data:`MAX_FRAME_BYTES` closes the connection with 1009 (message too big).
    """

    def __init__(
        self,
        on_message: Callable[[str | bytes], None] = _ignore,
        on_lost: Callable[[BrokerSocket, str], None] = _ignore,
        on_read: Callable[[], None] = _ignore,
        faults: FaultLog | None = None,
    ) -> None:
        super().__init__()
        self._on_message = on_message
        self._on_lost = on_lost
        self._on_read = on_read
        self._faults = faults or FaultLog(logging.getLogger("feedpool.broker"))
        self.transport: picows.WSTransport | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._joiner = MessageJoiner(MAX_FRAME_BYTES)
        #: Messages dropped because handling them raised.
        self.messages_dropped = 0
        #: Why this end closed the connection, when it closed it for something the broker sent.
        self._closed_for = ""
        self.closed = False

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        joiner = self._joiner
        try:
            payload = joiner.take(frame)
            if payload is not None:
                self._on_message(payload if joiner.binary else payload.decode(errors="replace"))
            elif frame.msg_type is picows.WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()
        except MessageTooBig as exc:
            self._closed_for = f"the broker sent {exc} (1009 message too big)"
            transport.send_close(picows.WSCloseCode.MESSAGE_TOO_BIG, b"message too big")
            transport.disconnect()
        except Exception as exc:  # one message costs itself, never the connection
            self.messages_dropped += 1
            self._faults.report(
                "dropped a message its handling failed on", "%s: %s", type(exc).__name__, exc
            )
        if frame.last_in_buffer:
            self._on_read()

    def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
        self.closed = True
        self._writable.set()
        received = transport.close_handshake and transport.close_handshake.recv
        if self._closed_for:
            reason = f"connection closed: {self._closed_for}"
        elif received is not None:
            reason = f"connection closed by the broker ({close_details(received)})"
        else:
            reason = "connection lost"
        self._on_lost(self, reason)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    async def send(self, text: str) -> None:
        """Send a text frame, waiting while the socket's buffer is full; :class:`ConnectionError`
        if the connection is gone."""
        await self._writable.wait()
        if self.closed or self.transport is None:
            raise ConnectionError("the connection is closed")
        self.transport.send(picows.WSMsgType.TEXT, text.encode())

    def abort(self) -> None:
        """Drop the connection at once, without the closing handshake."""
        if self.transport is not None and not self.closed:
            self.transport.disconnect(graceful=False)

    async def close(self) -> None:
        """Close the connection with the closing handshake."""
        if self.transport is not None and not self.closed:
            self.transport.send_close(picows.WSCloseCode.OK)
            self.transport.disconnect()
            await self.transport.wait_disconnected()


async def open_websocket(
    url: str, socket: BrokerSocket, headers: dict[str, str] | None = None
) -> BrokerSocket:
    """``socket``, connected to a broker at ``url`` with the upgrade request's ``headers``.

    :class:`UpgradeRefused` when the broker answers the upgrade with an HTTP status,
    :class:`Unreachable` when it cannot be reached or the handshake does not complete within
    :data:`OPEN_TIMEOUT`.
    """
    try:
        await asyncio.wait_for(
            picows.ws_connect(
                lambda: socket,
                url,
                extra_headers=headers,
                websocket_handshake_timeout=OPEN_TIMEOUT,
                logger_name=WIRE_LOG,
                enable_auto_ping=True,
                auto_ping_idle_timeout=KEEPALIVE_IDLE_SECONDS,
                auto_ping_reply_timeout=KEEPALIVE_REPLY_SECONDS,
                max_frame_size=MAX_FRAME_BYTES,
            ),
            OPEN_TIMEOUT,
        )
    except picows.WSInvalidStatusError as exc:
        status = exc.response.status
        reason = exc.response.headers.get("x-error-message", "") or status.phrase
        raise UpgradeRefused(int(status), reason) from None
    except (OSError, picows.WSError, TimeoutError) as exc:
        problem = str(exc).strip() or type(exc).__name__  # a timeout or a reset may say nothing
        raise Unreachable(problem) from None
    return socket
