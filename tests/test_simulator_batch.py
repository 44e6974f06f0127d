"""The contract :mod:`backend.simulator.batch` relies on: how aiohttp writes WebSocket frames."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from proxy_client import eventually
from websockets.asyncio.client import connect

from backend.simulator.batch import send_batch

WAIT = 10.0
Handler = Callable[[web.Request, web.WebSocketResponse], Awaitable[None]]


def test_the_attributes_it_uses_are_where_it_expects_them():
    """If aiohttp moves these, this fails before anything else does."""
    assert int(aiohttp.__version__.split(".")[0]) == 3
    assert isinstance(web.BaseRequest.transport, property)
    assert isinstance(web.BaseRequest.writer, property)
    assert inspect.iscoroutinefunction(AbstractStreamWriter.drain)


async def serve(handler: Handler) -> tuple[web.AppRunner, str]:
    async def endpoint(request: web.Request) -> web.WebSocketResponse:
        websocket = web.WebSocketResponse(compress=False)
        await websocket.prepare(request)
        await handler(request, websocket)
        return websocket

    app = web.Application()
    app.router.add_get("/", endpoint)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"ws://{host}:{port}/"


async def test_batches_fall_between_aiohttps_own_frames_in_order():
    large = bytes(range(256)) * 300  # a 76,800-byte payload: the 8-byte length form
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def handler(request: web.Request, websocket: web.WebSocketResponse) -> None:
        await websocket.send_str("first")
        await send_batch(request, websocket, [b"one", b"", b"x" * 200, large])
        await websocket.send_bytes(b"between")
        await send_batch(request, websocket, [b"last"])
        async for _ in websocket:  # answers the client's pings until it closes
            pass
        with pytest.raises(ConnectionResetError):
            await send_batch(request, websocket, [b"after the close"])
        done.set_result(None)

    runner, url = await serve(handler)
    try:
        async with connect(url, max_size=None) as client:
            await asyncio.wait_for(await client.ping(), WAIT)
            received = [await asyncio.wait_for(client.recv(), WAIT) for _ in range(7)]
            await asyncio.wait_for(await client.ping(), WAIT)
        assert received == ["first", b"one", b"", b"x" * 200, large, b"between", b"last"]
        await asyncio.wait_for(done, WAIT)
    finally:
        await runner.cleanup()


async def test_a_batch_waits_while_the_client_does_not_read():
    chunks = 64  # 64 MiB: more than the socket buffers of both ends hold
    state: dict[str, object] = {"returned": 0}
    finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def handler(request: web.Request, websocket: web.WebSocketResponse) -> None:
        state["protocol"] = request.protocol
        for _ in range(chunks):
            await send_batch(request, websocket, [bytes(2**20)])
            state["returned"] += 1
        finished.set_result(None)
        await websocket.close()

    def paused() -> bool:
        protocol = state.get("protocol")
        return protocol is not None and protocol.writing_paused

    runner, url = await serve(handler)
    host, port = url.removeprefix("ws://").rstrip("/").split(":")
    # A client that shakes hands, then reads nothing until told to.
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        assert head.startswith(b"HTTP/1.1 101")
        await eventually(paused, WAIT)
        returned = state["returned"]
        assert returned < chunks
        for _ in range(20):  # the blocked send does not return while the transport is paused
            await asyncio.sleep(0)
            assert paused() and state["returned"] == returned
        async with asyncio.timeout(WAIT):
            while not finished.done():
                await reader.read(2**20)
        assert state["returned"] == chunks
    finally:
        writer.close()
        await runner.cleanup()
