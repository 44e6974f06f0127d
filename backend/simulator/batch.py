"""Many binary frames to one aiohttp WebSocket in one write: the one module of the simulator that
relies on how aiohttp writes frames.

``WebSocketResponse.send_bytes`` makes a socket write per message, and SmartStream sends one
message per tick: at tens of thousands of ticks a second that is most of the simulator's work.
:func:`send_batch` frames a batch itself (:mod:`backend.ws_frames`, compression off) and hands
it to the connection's transport in one write, then waits as ``send_bytes`` would until the
transport takes more.

It uses only public attributes (``BaseRequest.transport``, ``BaseRequest.writer`` and its
``drain()``), but it relies on what aiohttp does with them: that its WebSocket writer keeps no
frames of its own and writes each of its frames (pongs, the close) whole to that transport, so
a batch falls between them, and that ``writer.drain()`` waits while the transport is paused.
``tests/test_simulator_batch.py`` fails loudly if that changes, and ``pyproject.toml`` keeps
aiohttp below its next major version.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from backend.ws_frames import FIN_BINARY, frame


async def send_batch(
    request: web.BaseRequest, websocket: web.WebSocketResponse, payloads: Sequence[bytes]
) -> None:
    """Send ``payloads`` as binary messages on the prepared, uncompressed ``websocket``.

    :exc:`ConnectionResetError` if the connection is closing: nothing is sent then.
    """
    transport = request.transport
    if websocket.closed or transport is None or transport.is_closing():
        raise ConnectionResetError("the WebSocket is closing")
    transport.write(b"".join([frame(FIN_BINARY, payload) for payload in payloads]))
    await request.writer.drain()
