"""Many frames to one websockets connection in one write: the one module that goes past
websockets' public API.

``Connection.send`` costs a task switch and a socket write per frame. Like the library's own
``broadcast``, :func:`send_batch` instead has the connection's protocol encode every frame of a
batch, writes the batch to the transport at once, and then waits, as ``send`` would, until the
transport takes more. That uses the connection's ``protocol``, ``transport`` and ``drain()``,
which websockets does not document; ``tests/test_ws_batch.py`` fails loudly if they move, and
``pyproject.toml`` keeps websockets below its next major version.
"""

from __future__ import annotations

from collections.abc import Sequence

from websockets.asyncio.connection import Connection
from websockets.protocol import State


async def send_batch(connection: Connection, frames: Sequence[bytes], *, text: bool) -> bool:
    """Send ``frames`` (text or binary messages) on ``connection``; False if it is not open."""
    protocol = connection.protocol
    if protocol.state is not State.OPEN:
        return False
    send = protocol.send_text if text else protocol.send_binary
    for frame in frames:
        send(frame)
    connection.transport.write(b"".join(protocol.data_to_send()))
    await connection.drain()
    return True
