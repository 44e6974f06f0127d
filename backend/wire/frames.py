"""WebSocket frames as a server writes them (RFC 6455, section 5.2).

A server's frames are unmasked; unfragmented and uncompressed, each is a two- to ten-byte header
before its payload.
"""

from __future__ import annotations

import struct

FIN_TEXT, FIN_BINARY = 0x81, 0x82
_MEDIUM = struct.Struct("!BBH")
_LARGE = struct.Struct("!BBQ")


def header(first_byte: int, size: int) -> bytes:
    """The header of an unmasked, unfragmented frame: ``first_byte`` (FIN and opcode), then a
    payload length of ``size``."""
    if size < 126:
        return bytes((first_byte, size))
    if size < 65536:
        return _MEDIUM.pack(first_byte, 126, size)
    return _LARGE.pack(first_byte, 127, size)


def frame(first_byte: int, payload: bytes) -> bytes:
    """One unmasked, unfragmented frame: ``first_byte`` (FIN and opcode), length, payload."""
    return header(first_byte, len(payload)) + payload
