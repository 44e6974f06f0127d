"""Frames written straight to an aiohttp WebSocket's transport: the one module of the simulator
that relies on how aiohttp writes frames.

The market's clock (:mod:`backend.simulator.clock`) sends each connection the ticks of a slot in
one write, framed by the broker's dialect (:mod:`backend.wire.frames`, compression off), and never
waits for a connection: one whose client is not reading is skipped while it is
:func:`backlogged`.

It uses only public attributes (``BaseRequest.transport`` and asyncio's transport API), but it
relies on what aiohttp does with them: that its WebSocket writer keeps no frames of its own and
writes each of its frames (pongs, the close) whole to that transport, so a batch falls between
them. ``tests/test_simulator_batch.py`` fails loudly if that changes, and ``pyproject.toml``
keeps aiohttp below its next major version.
"""

from __future__ import annotations

from aiohttp import web


def backlogged(request: web.BaseRequest) -> bool:
    """Whether the connection cannot take more now: its transport is gone or closing, or holds
    more unsent bytes than its high-water mark (its client is not reading)."""
    transport = request.transport
    if transport is None or transport.is_closing():
        return True
    return transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]


def write_frames(request: web.BaseRequest, websocket: web.WebSocketResponse, frames: bytes) -> None:
    """Write ``frames`` (whole WebSocket frames) on the prepared, uncompressed ``websocket``;
    nothing if the connection is closing."""
    transport = request.transport
    if not websocket.closed and transport is not None and not transport.is_closing():
        transport.write(frames)
