"""Whole WebSocket messages from the frames picows hands a listener, as they are parsed.

A message is one text or binary frame, or one such frame not final followed by continuation
frames up to the final one. The broker adapters' sockets and the desktop's feed socket both
take their messages through a :class:`MessageJoiner`.

A frame is as long as the socket's largest frame at most, but a message of continuation frames
could go on without end; the joiner holds at most ``max_bytes`` of one and drops it past that.
"""

from __future__ import annotations

import picows

_TEXT, _BINARY, _CONTINUATION = (
    picows.WSMsgType.TEXT,
    picows.WSMsgType.BINARY,
    picows.WSMsgType.CONTINUATION,
)


class MessageTooBig(ValueError):
    """A message of continuation frames passed the joiner's ``max_bytes``; its parts are dropped."""


class MessageJoiner:
    """Joins one connection's frames into messages of at most ``max_bytes`` (unfragmented ones
    are bounded by the socket's largest frame); :attr:`binary` says what the last was."""

    __slots__ = ("_parts", "binary", "max_bytes", "size")

    def __init__(self, max_bytes: int) -> None:
        self._parts: list[bytes] = []
        self.binary = False
        self.max_bytes = max_bytes
        #: Bytes held of the message being joined.
        self.size = 0

    def take(self, frame: picows.WSFrame) -> bytes | None:
        """The payload of the message ``frame`` completes, or ``None``: it begins or continues
        one, or it is not a data frame (a ping, a pong, a close).

        :class:`MessageTooBig` when the message being joined would pass ``max_bytes``: what it
        held is dropped, and its further continuation frames are ignored.
        """
        kind = frame.msg_type
        if kind is _TEXT or kind is _BINARY:
            self.binary = kind is _BINARY
            if frame.fin:
                return frame.get_payload_as_bytes()
            self._parts, self.size = [], 0
            self._add(frame)
        elif kind is _CONTINUATION and self._parts:
            self._add(frame)
            if frame.fin:
                payload, self._parts, self.size = b"".join(self._parts), [], 0
                return payload
        return None

    def _add(self, frame: picows.WSFrame) -> None:
        size = self.size + frame.payload_size
        if size > self.max_bytes:
            self._parts, self.size = [], 0
            raise MessageTooBig(f"a message of more than {self.max_bytes:,} bytes")
        self._parts.append(frame.get_payload_as_bytes())
        self.size = size
