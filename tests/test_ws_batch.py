"""The contract :mod:`backend.ws_batch` relies on: websockets internals, and what they do."""

from __future__ import annotations

import asyncio
import inspect

from websockets.asyncio.client import connect
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import serve
from websockets.protocol import Protocol, State

from backend.ws_batch import send_batch


def test_the_internals_it_uses_are_where_it_expects_them():
    """If websockets moves these, this fails before anything else does."""
    assert inspect.iscoroutinefunction(Connection.drain)
    for name in ("send_text", "send_binary", "data_to_send"):
        assert callable(getattr(Protocol, name)), name


async def test_a_batch_arrives_whole_in_order_and_a_closed_connection_is_refused():
    sent: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    after_close: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def handler(websocket):
        sent.set_result(await send_batch(websocket, [b"one", b"two", b"three"], text=False))
        assert isinstance(websocket.protocol, Protocol) and websocket.transport.is_reading()
        await send_batch(websocket, [b"text"], text=True)
        await websocket.wait_closed()
        assert websocket.protocol.state is State.CLOSED
        after_close.set_result(await send_batch(websocket, [b"late"], text=False))

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}") as client:
            received = [await asyncio.wait_for(client.recv(), 5) for _ in range(4)]
        assert received == [b"one", b"two", b"three", "text"]
        assert await asyncio.wait_for(sent, 5) is True
        assert await asyncio.wait_for(after_close, 5) is False
