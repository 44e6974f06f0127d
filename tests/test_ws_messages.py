"""Whole messages from picows frames: fragmented ones joined, whole ones as they come."""

from __future__ import annotations

import asyncio

from websockets.asyncio.server import serve

from backend.wire.broker_socket import BrokerSocket, open_websocket

WAIT = 10.0


async def test_a_broker_socket_joins_fragments_and_keeps_text_and_binary_apart():
    async def broker(websocket):
        await websocket.send(["fragmented ", "text"])  # an iterable goes out in fragments
        await websocket.send([b"\x00\x01", b"\x02"])
        await websocket.send("whole")
        await websocket.wait_closed()

    messages: list[str | bytes] = []
    got_all = asyncio.Event()

    def on_message(message: str | bytes) -> None:
        messages.append(message)
        if len(messages) == 3:
            got_all.set()

    async with serve(broker, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        socket = await open_websocket(url, BrokerSocket(on_message))
        try:
            await asyncio.wait_for(got_all.wait(), WAIT)
        finally:
            await socket.close()
    assert messages == ["fragmented text", b"\x00\x01\x02", "whole"]
