"""One client of the WebSocket API: its requests, what it holds, its outbox, and its tasks.

A reader task takes the client's messages off the socket as they come and queues them, up to
:data:`REQUESTS_WAITING` (past that it stops reading until one is carried out). A worker task
carries them out one at a time, in order, and sends each reply, waiting while the client does
not take it. So a request the pool is slow to answer holds up the client's later requests but
not the reading: the connection's keepalive goes on, and its closing is seen at once.

Ticks reach a client through :meth:`Client.push`, called by the
:class:`~backend.proxy.ticks.TickRouter` (the bus publisher's in-process tick listener): through the
optional :class:`~backend.proxy.throttle.Throttle` into the :class:`~backend.proxy.outbox.Outbox`,
never waiting. A writer task takes the outbox's frames in batches and sends them, so only that
task ever waits on the client's socket for ticks.

When the client leaves, :meth:`Client.leave` stops the ticks and the tasks and lets go of
everything that refers back to the client, so reference counting frees the client as soon as the
proxy is done with it, without waiting for a pass of the garbage collector. A request in flight
is carried out to the end (:meth:`Client.finished`): a pool left mid-way might keep
symbols busy, and the proxy lets go of what the request got once it is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from backend.proxy import replies
from backend.proxy.index import Key
from backend.proxy.outbox import OUTBOX_LIMIT, STALL_SECONDS, Outbox
from backend.proxy.throttle import Throttle
from backend.wire.batch import cut, release_parser, send_batch

log = logging.getLogger("feedpool.proxy")

#: Close code for a client whose outbox stayed full: policy violation.
CLOSE_NOT_READING = 1008
#: How long a closing handshake may take before the connection is cut.
CLOSE_TIMEOUT = 5.0
#: Messages queued behind the one being carried out, as many as websockets itself buffers.
REQUESTS_WAITING = 16

Frame = str | bytes


def _ignore(key: Key, frame: bytes, now: float) -> None:
    """What a client that has left does with a tick still routed to it."""


class Client:
    """A connected client; ``number`` names it in logs and statistics.

    ``handle(client, frame)`` carries out one message and sends its reply.
    """

    def __init__(
        self,
        number: int,
        websocket: ServerConnection,
        handle: Callable[[Client, Frame], Awaitable[None]],
        *,
        min_interval: float = 0.0,
        outbox_limit: int = OUTBOX_LIMIT,
        stall_seconds: float = STALL_SECONDS,
    ) -> None:
        self.number = number
        self.websocket = websocket
        host, port = websocket.remote_address[:2]
        #: The client's address, whose limits it shares (:mod:`backend.proxy.limits`).
        self.address: str = host
        self.peer = f"{host}:{port}"
        #: When the client connected, epoch seconds.
        self.connected_at = time.time()
        self.authenticated = False
        #: ``(symbol, exchange, mode)`` this client holds, as the pool counts them.
        self.subscriptions: set[Key] = set()
        #: Frames written to the socket.
        self.sent = 0
        self.outbox = Outbox(self._stalled, limit=outbox_limit, stall_seconds=stall_seconds)
        self.throttle = Throttle(min_interval, self.outbox.put) if min_interval > 0 else None
        #: Take one tick frame (see :class:`~backend.proxy.index.Subscriber`); never blocks.
        self.push = self.throttle.offer if self.throttle else self.outbox.put
        #: Messages read and not yet carried out; None tells the worker to stop.
        self._requests: asyncio.Queue[Frame | None] = asyncio.Queue(REQUESTS_WAITING)
        self._tasks: set[asyncio.Task[None]] = set()
        self._spawn(self._write())
        self._spawn(self._read())
        self._worker = asyncio.get_running_loop().create_task(self._carry_out(handle))

    def __repr__(self) -> str:
        return f"<Client {self.number} {self.peer}>"

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in self.websocket:
                await self._requests.put(frame)

    async def _carry_out(self, handle: Callable[[Client, Frame], Awaitable[None]]) -> None:
        while (frame := await self._requests.get()) is not None:
            with contextlib.suppress(ConnectionClosed):  # the reader sees it too
                await handle(self, frame)

    async def _write(self) -> None:
        """Write the outbox out a batch at a time, each batch in one write
        (:mod:`backend.wire.batch`).

        A batched frame costs about a thirtieth of a ``send`` (``docs/architecture.md``, "Three
        WebSocket libraries"), and sending is most of the proxy's work per tick.
        """
        with contextlib.suppress(OSError):  # the connection is lost; the reader sees it too
            while True:
                frames = await self.outbox.take()
                if not await send_batch(self.websocket, frames, text=True):
                    return
                self.sent += len(frames)

    async def reply(self, reply: replies.Reply | bytes) -> None:
        """Send a reply, or one already encoded; waits while the client is not reading."""
        encoded = reply if isinstance(reply, bytes) else replies.encode(reply)
        await self.websocket.send(encoded, text=True)

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
            cut(self.websocket)

    def leave(self) -> None:
        """The connection is closed: take no more ticks, drop what waits to be sent or carried
        out, cancel every task but the worker, which stops after the request in flight.

        The tasks, the outbox's callback and the throttle's timers all refer back to the
        client; once they are gone nothing does. The connection's parser goes too (see
        :func:`~backend.wire.batch.release_parser`).
        """
        release_parser(self.websocket)
        self.push = _ignore
        if self.throttle is not None:
            self.throttle.close()
        self.outbox.close()
        for task in self._tasks:
            task.cancel()
        while not self._requests.empty():
            self._requests.get_nowait()
        self._requests.put_nowait(None)

    def abandon(self) -> None:
        """Cancel the request in flight too (when the proxy shuts down: the pool closes next)."""
        self._worker.cancel()

    async def finished(self) -> None:
        """Wait until the worker has stopped (after :meth:`leave`), or was abandoned."""
        await asyncio.wait([self._worker])

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
