"""One picows WebSocket to the backend's API: each message it brings to a callback, requests out.

picows calls :meth:`FeedSocket.on_ws_frame` for every frame as it parses a read from the socket,
so a message goes from the socket's buffer to its callback without a queue or a task switch. A
read that brings more than :data:`BURST` messages (a backlog after a busy moment; picows' read
buffer grows to take it) is worked through :data:`BURST` at a time, the loop getting a turn
between them and the socket not read meanwhile, so a backlog cannot hold up painting.

The socket pings the backend itself, every ``ping_seconds`` whatever else arrives, and drops the
connection when a pong is ``pong_timeout`` late: a network that stops forwarding without closing
is found within about the sum of the two. (picows' own pinging waits for silence and never waits
for a pong longer than its interval.)
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Callable

import picows

from backend.wire.joiner import MessageJoiner, MessageTooBig

#: Messages handed over in a row before the loop gets a turn.
BURST = 100
#: The longest message joined from continuation frames: picows' own bound on a frame, and far
#: above the backend's longest reply.
MAX_MESSAGE_BYTES = 10 * 2**20
#: The codes of a backend that closed the connection on purpose (stopping, or done with it).
NORMAL_CLOSES = (picows.WSCloseCode.OK, picows.WSCloseCode.GOING_AWAY)

Receive = Callable[[bytes], None]


class ConnectionLost(Exception):
    """The connection ended other than by the backend closing it normally."""


class FeedSocket(picows.WSListener):
    """One WebSocket: every message (a text or binary payload, as bytes) to ``on_message``."""

    def __init__(self, on_message: Receive, ping_seconds: float, pong_timeout: float) -> None:
        super().__init__()
        self._on_message = on_message
        #: Where the next message goes: ``on_message``, or the waiter of :meth:`next_message`.
        self._take = on_message
        self._waiter: asyncio.Future[bytes] | None = None
        #: Messages handed over since this read began.
        self._taken = 0
        #: The rest of a read that brought more than :data:`BURST`, while it is worked through.
        self._held: collections.deque[bytes] | None = None
        self._joiner = MessageJoiner(MAX_MESSAGE_BYTES)
        self._ping_seconds = ping_seconds
        self._pong_timeout = pong_timeout
        self._pong = asyncio.Event()
        self._pinging: asyncio.Task[None] | None = None
        self._ended = asyncio.Event()
        self._lost = ""
        self.transport: picows.WSTransport | None = None

    @property
    def local_address(self) -> tuple[str, int]:
        """The host and port this end of the connection has."""
        assert self.transport is not None
        return self.transport.underlying_transport.get_extra_info("sockname")[:2]

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        """The TLS connection's :class:`ssl.SSLObject`, ``None`` on a plain connection."""
        assert self.transport is not None
        return self.transport.underlying_transport.get_extra_info("ssl_object")

    def opened(self) -> None:
        """:class:`ConnectionLost` unless picows' handshake left the connection open."""
        if self.transport is None or self._ended.is_set():
            raise ConnectionLost(self._lost or "the connection closed during the handshake")

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.transport = transport
        self._pinging = asyncio.get_running_loop().create_task(self._keep_alive())

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        try:
            payload = self._joiner.take(frame)
        except MessageTooBig as exc:
            self._lost = f"the backend sent {exc}"
            transport.send_close(picows.WSCloseCode.MESSAGE_TOO_BIG, b"message too big")
            transport.disconnect()
            return
        kind = frame.msg_type
        if payload is not None:
            self._message(payload)
        elif kind is picows.WSMsgType.PONG:
            self._pong.set()
        elif kind is picows.WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        if frame.last_in_buffer:
            self._taken = 0

    def _message(self, payload: bytes) -> None:
        if self._held is not None:
            self._held.append(payload)
            return
        self._take(payload)
        self._taken += 1
        if self._taken == BURST and self.transport is not None:
            self._held = collections.deque()
            self.transport.underlying_transport.pause_reading()
            asyncio.get_running_loop().call_soon(self._work_through)

    def _work_through(self) -> None:
        """Hand over the next :data:`BURST` held messages; read again once all are."""
        held = self._held
        if held is None:  # the connection has ended
            return
        for _ in range(min(BURST, len(held))):
            self._take(held.popleft())
        if held:
            asyncio.get_running_loop().call_soon(self._work_through)
        else:
            self._held = None
            if self.transport is not None and not self._ended.is_set():
                self.transport.underlying_transport.resume_reading()

    def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
        self._held = None
        if self._pinging is not None:
            self._pinging.cancel()
        received = transport.close_handshake and transport.close_handshake.recv
        if not self._lost and received is None:
            self._lost = "the connection dropped"
        elif not self._lost and received.code not in NORMAL_CLOSES:
            self._lost = f"the backend closed it ({received.code.value} {received.reason})".strip()
        self._ended.set()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionLost(self._lost or "the backend closed it"))

    def pause_writing(self) -> None:
        """Nothing to hold back: the transport keeps what it cannot send yet, and requests are
        few and small."""

    def resume_writing(self) -> None:
        pass

    async def _keep_alive(self) -> None:
        assert self.transport is not None
        while True:
            await asyncio.sleep(self._ping_seconds)
            self._pong.clear()
            self.transport.send_ping()
            try:
                await asyncio.wait_for(self._pong.wait(), self._pong_timeout)
            except TimeoutError:
                self._lost = f"no reply to a ping within {self._pong_timeout:g} s"
                self.abort()
                return

    def _hand_over(self, payload: bytes) -> None:
        self._take = self._on_message
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(payload)

    async def next_message(self) -> bytes:
        """The next message, kept from ``on_message``; :class:`ConnectionLost` if the connection
        ends first."""
        if self._ended.is_set():
            raise ConnectionLost(self._lost or "the backend closed it")
        self._waiter = asyncio.get_running_loop().create_future()
        self._take = self._hand_over
        try:
            return await self._waiter
        finally:
            self._take = self._on_message
            self._waiter = None

    async def ended(self) -> str:
        """Wait for the connection to end: the backend's reason when it closed it normally,
        :class:`ConnectionLost` otherwise."""
        await self._ended.wait()
        if self._lost:
            raise ConnectionLost(self._lost)
        received = self.transport and self.transport.close_handshake.recv
        return received.reason if received else ""

    def send(self, text: str) -> None:
        """Send ``text`` in a text frame; nothing once the connection is gone (whoever sent it
        sends it again on the next connection)."""
        if self.transport is not None and not self._ended.is_set():
            self.transport.send(picows.WSMsgType.TEXT, text.encode())

    def close(self) -> None:
        """Close with the closing handshake's first frame, not waiting for the backend's."""
        if self.transport is not None and not self._ended.is_set():
            self.transport.send_close(picows.WSCloseCode.OK)
            self.transport.disconnect()

    def abort(self) -> None:
        """Drop the connection at once, without the closing handshake (unless it has begun)."""
        transport = self.transport
        if transport is not None and not self._ended.is_set() and not transport.is_close_frame_sent:
            transport.disconnect(graceful=False)
