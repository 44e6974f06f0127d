"""Many frames to one websockets server connection in one write: the one module that goes past
websockets' public API.

``Connection.send`` costs a task switch, a frame object and a socket write per message. At tens
of thousands of ticks a second that is most of the work, so :func:`send_batch` frames a batch
itself: a server's frames are unmasked and, with compression off, are a two- to ten-byte header
before the payload (RFC 6455, section 5.2). The batch goes to the transport in one write, between
whole frames of the connection's own (pings, the close), and the sender then waits, as ``send``
would, until the transport takes more.

That uses the connection's ``protocol`` (its state and side), ``transport`` and ``drain()``, which
websockets does not document; ``tests/test_ws_batch.py`` fails loudly if they move, and
``pyproject.toml`` keeps websockets below its next major version.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from websockets.asyncio.connection import Connection
from websockets.protocol import SERVER, State

_FIN_TEXT, _FIN_BINARY = 0x81, 0x82
_MEDIUM = struct.Struct("!BBH")
_LARGE = struct.Struct("!BBQ")


def frame(first_byte: int, payload: bytes) -> bytes:
    """One unmasked, unfragmented frame: ``first_byte`` (FIN and opcode), length, payload."""
    size = len(payload)
    if size < 126:
        return bytes((first_byte, size)) + payload
    if size < 65536:
        return _MEDIUM.pack(first_byte, 126, size) + payload
    return _LARGE.pack(first_byte, 127, size) + payload


async def send_batch(connection: Connection, frames: Sequence[bytes], *, text: bool) -> bool:
    """Send ``frames`` (UTF-8 text or binary messages) from a server connection in one write.

    False if the connection is not open: nothing is sent then.
    """
    protocol = connection.protocol
    if protocol.state is not State.OPEN:
        return False
    if protocol.side is not SERVER:
        raise ValueError("only a server's frames go unmasked")
    first = _FIN_TEXT if text else _FIN_BINARY
    connection.transport.write(b"".join([frame(first, payload) for payload in frames]))
    await connection.drain()
    return True
