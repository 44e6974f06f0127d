"""Whole WebSocket messages from the frames picows hands a listener, as they are parsed.

A message is one text or binary frame, or one such frame not final followed by continuation
frames up to the final one. The broker adapters' sockets and the desktop's feed socket both
take their messages through a :class:`MessageJoiner`.
"""

from __future__ import annotations

import picows

_TEXT, _BINARY, _CONTINUATION = (
    picows.WSMsgType.TEXT,
    picows.WSMsgType.BINARY,
    picows.WSMsgType.CONTINUATION,
)


class MessageJoiner:
    """Joins one connection's frames into messages; :attr:`binary` says what the last was."""

    __slots__ = ("_parts", "binary")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.binary = False

    def take(self, frame: picows.WSFrame) -> bytes | None:
        """The payload of the message ``frame`` completes, or ``None``: it begins or continues
        one, or it is not a data frame (a ping, a pong, a close)."""
        kind = frame.msg_type
        if kind is _TEXT or kind is _BINARY:
            self.binary = kind is _BINARY
            if frame.fin:
                return frame.get_payload_as_bytes()
            self._parts = [frame.get_payload_as_bytes()]
        elif kind is _CONTINUATION and self._parts:
            self._parts.append(frame.get_payload_as_bytes())
            if frame.fin:
                payload, self._parts = b"".join(self._parts), []
                return payload
        return None
