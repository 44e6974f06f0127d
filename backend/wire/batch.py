"""Many frames to one websockets server connection in one write: the one module that goes past
websockets' public API.

``Connection.send`` costs a task switch, a frame object and a socket write per message. At tens
of thousands of ticks a second that is most of the work, so :func:`send_batch` frames a batch
itself (:mod:`backend.wire.frames`), with compression off. The batch goes to the transport in one
write, between whole frames of the connection's own (pings, the close), and the sender then
waits, as ``send`` would, until the transport takes more.

That uses the connection's ``protocol`` (its state, side and parser), ``transport`` and
``drain()``, which websockets does not document; ``tests/test_ws_batch.py`` fails loudly if they
move, and ``pyproject.toml`` keeps websockets below its next major version.

:func:`release_parser` frees a closed connection's protocol at once: websockets leaves it in a
reference cycle with its parser, which only the garbage collector would break. :func:`cut` drops
a connection whose peer does not answer the closing handshake.
"""

from __future__ import annotations

from collections.abc import Sequence

from websockets.asyncio.connection import Connection
from websockets.protocol import SERVER, State

from backend.wire.frames import FIN_BINARY, FIN_TEXT, frame


async def send_batch(connection: Connection, frames: Sequence[bytes], *, text: bool) -> bool:
    """Send ``frames`` (UTF-8 text or binary messages) from a server connection in one write.

    False if the connection is not open: nothing is sent then.
    """
    protocol = connection.protocol
    if protocol.state is not State.OPEN:
        return False
    if protocol.side is not SERVER:
        raise ValueError("only a server's frames go unmasked")
    first = FIN_TEXT if text else FIN_BINARY
    connection.transport.write(b"".join([frame(first, payload) for payload in frames]))
    await connection.drain()
    return True


def cut(connection: Connection) -> None:
    """Drop the connection at once, without the closing handshake (a peer that does not answer
    it)."""
    connection.transport.abort()


def release_parser(connection: Connection) -> None:
    """Close a closed connection's parser, a generator that refers back to the protocol.

    Once the connection is closed the parser is suspended for good (websockets never steps it
    after the end of the stream), so closing it loses nothing; the protocol, with its buffers,
    is then freed as soon as the connection is.
    """
    protocol = connection.protocol
    if protocol.state is State.CLOSED:
        protocol.parser.close()
