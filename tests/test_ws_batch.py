"""The contract :mod:`backend.wire.batch` relies on: websockets internals, and what they do."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import serve
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, State

from backend.wire.batch import send_batch
from backend.wire.frames import frame


def test_the_internals_it_uses_are_where_it_expects_them():
    """If websockets moves these, this fails before anything else does."""
    assert inspect.iscoroutinefunction(Connection.drain)
    attributes = set(dir(Protocol)) | set(Protocol.__init__.__code__.co_names)
    assert {"state", "side", "parser"} <= attributes


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_frames_are_as_the_library_writes_them(size):
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    for opcode, first in ((Opcode.TEXT, 0x81), (Opcode.BINARY, 0x82)):
        library = Frame(opcode, payload).serialize(mask=False)
        assert frame(first, payload) == library


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
