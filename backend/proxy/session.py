"""One client of the WebSocket API: what it holds, its outbox, and the task that writes it out.

Ticks reach a session through :meth:`ClientSession.push`, called by the bus reader: through the
optional :class:`~backend.proxy.throttle.Throttle` into the :class:`~backend.proxy.outbox.Outbox`,
never waiting. A writer task per session takes the outbox's frames in batches and sends them, so
only that task ever waits on the client's socket. Replies to the client's requests are sent by
the task reading its requests, which therefore stops reading while the client does not take them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from backend.proxy import replies
from backend.proxy.index import Key
from backend.proxy.outbox import OUTBOX_LIMIT, STALL_SECONDS, Outbox
from backend.proxy.throttle import Throttle
from backend.ws_batch import send_batch

log = logging.getLogger("feedpool.proxy")

#: Close code for a client whose outbox stayed full: policy violation.
CLOSE_NOT_READING = 1008
#: How long a closing handshake may take before the connection is cut.
CLOSE_TIMEOUT = 5.0


class ClientSession:
    """A connected client; ``number`` names it in logs and statistics."""

    def __init__(
        self,
        number: int,
        websocket: ServerConnection,
        *,
        min_interval: float = 0.0,
        outbox_limit: int = OUTBOX_LIMIT,
        stall_seconds: float = STALL_SECONDS,
    ) -> None:
        self.number = number
        self.websocket = websocket
        host, port = websocket.remote_address[:2]
        self.peer = f"{host}:{port}"
        #: When the client connected, epoch seconds.
        self.connected_at = time.time()
        self.authenticated = False
        self.failed_authentications = 0
        #: ``(symbol, exchange, mode)`` this client holds, as the pool counts them.
        self.subscriptions: set[Key] = set()
        #: Frames written to the socket.
        self.sent = 0
        self.outbox = Outbox(self._stalled, limit=outbox_limit, stall_seconds=stall_seconds)
        self.throttle = Throttle(min_interval, self.outbox.put) if min_interval > 0 else None
        #: Take one tick frame (see :class:`~backend.proxy.index.Subscriber`); never blocks.
        self.push = self.throttle.offer if self.throttle else self.outbox.put
        self._tasks: set[asyncio.Task[None]] = set()
        self._writer = self._spawn(self._write())

    def __repr__(self) -> str:
        return f"<ClientSession {self.number} {self.peer}>"

    def _spawn(self, coroutine: Any) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _write(self) -> None:
        """Write the outbox out a batch at a time, each batch in one write (:mod:`ws_batch`).

        That costs a fifth of a ``send`` per frame, which is most of the proxy's work per tick.
        """
        with contextlib.suppress(OSError):  # the connection is lost; the reader sees it too
            while True:
                frames = await self.outbox.take()
                if not await send_batch(self.websocket, frames, text=True):
                    return
                self.sent += len(frames)

    async def reply(self, reply: replies.Reply) -> None:
        """Send a reply; waits while the client is not reading."""
        await self.websocket.send(replies.encode(reply), text=True)

    def notify(self, reply: replies.Reply) -> None:
        """Send a message the client did not ask for, without waiting for it to be written."""
        self._spawn(self._notify(reply))

    async def _notify(self, reply: replies.Reply) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.reply(reply)

    def _stalled(self) -> None:
        reason = f"outbox full for {self.outbox.stall_seconds:g} s: client not reading"
        log.warning(
            "Client %d (%s): closing, %s; %d ticks conflated",
            self.number,
            self.peer,
            reason,
            self.outbox.conflated,
        )
        self.close_soon(CLOSE_NOT_READING, reason)

    def close_soon(self, code: int, reason: str) -> None:
        """Start closing the connection with ``code`` and ``reason``."""
        self._spawn(self.close(code, reason))

    async def close(self, code: int, reason: str, grace: float = CLOSE_TIMEOUT) -> None:
        """Close the connection; cut it if the client does not answer within ``grace`` s."""
        try:
            await asyncio.wait_for(self.websocket.close(code, reason), grace)
        except TimeoutError:
            self.websocket.transport.abort()

    async def stop(self) -> None:
        """Stop writing: cancel the writer and drop what is held back."""
        if self.throttle is not None:
            self.throttle.close()
        self._writer.cancel()
        await asyncio.gather(self._writer, return_exceptions=True)

    def stats(self) -> dict[str, Any]:
        return {
            "client": self.number,
            "peer": self.peer,
            "connected_at": self.connected_at,
            "authenticated": self.authenticated,
            "subscriptions": len(self.subscriptions),
            "symbols": sorted(self.subscriptions),
            "sent": self.sent,
            "queued": len(self.outbox),
            "conflated": self.outbox.conflated,
            "throttled": self.throttle.superseded if self.throttle else 0,
        }
