"""The contract :mod:`backend.simulator.batch` relies on: how aiohttp writes WebSocket frames."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web
from proxy_client import eventually
from websockets.asyncio.client import connect

from backend.simulator.batch import backlogged, write_frames
from backend.wire.frames import FIN_BINARY, frame

WAIT = 10.0
Handler = Callable[[web.Request, web.WebSocketResponse], Awaitable[None]]


def test_the_attributes_it_uses_are_where_it_expects_them():
    """If aiohttp moves these, this fails before anything else does."""
    assert int(aiohttp.__version__.split(".")[0]) == 3
    assert isinstance(web.BaseRequest.transport, property)


def frames(*payloads: bytes) -> bytes:
    return b"".join(frame(FIN_BINARY, payload) for payload in payloads)


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
        write_frames(request, websocket, frames(b"one", b"", b"x" * 200, large))
        await websocket.send_bytes(b"between")
        write_frames(request, websocket, frames(b"last"))
        async for _ in websocket:  # answers the client's pings until it closes
            pass
        assert backlogged(request)
        write_frames(request, websocket, frames(b"after the close"))  # nothing, and no error
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


async def test_a_connection_is_backlogged_while_its_client_does_not_read():
    chunk = frames(bytes(2**20))
    state: dict[str, object] = {}
    read_again = asyncio.Event()
    finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def handler(request: web.Request, websocket: web.WebSocketResponse) -> None:
        state["request"] = request
        written = 0
        # The clock's way: write while the connection takes more, skip while it is backlogged.
        while not backlogged(request):
            write_frames(request, websocket, chunk)
            written += 1
        state["written"] = written
        await read_again.wait()
        await eventually(lambda: not backlogged(request), WAIT)
        finished.set_result(None)
        await websocket.close()

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
        await eventually(lambda: "written" in state, WAIT)
        request = state["request"]
        # What is held unsent stays within one write past the high-water mark.
        high = request.transport.get_write_buffer_limits()[1]
        assert request.transport.get_write_buffer_size() <= high + len(chunk)
        assert backlogged(request)
        read_again.set()
        async with asyncio.timeout(WAIT):
            while not finished.done():
                await reader.read(2**20)
        assert not backlogged(request) or request.transport.is_closing()
    finally:
        writer.close()
        await runner.cleanup()
