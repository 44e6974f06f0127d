"""A logger for the websockets library that never writes a credential.

At DEBUG level websockets logs every handshake header as ``("> %s: %s", name, value)`` on the
client and ``("< %s: %s", name, value)`` on the server. SmartStream authenticates with headers,
so both the adapter and the simulator hand websockets a :class:`MaskedHeadersLogger`.
"""

from __future__ import annotations

import logging
from typing import Any

SECRET_HEADERS = frozenset({"authorization", "x-api-key", "x-feed-token"})


class MaskedHeadersLogger(logging.LoggerAdapter):
    """A logger that masks the values of :data:`SECRET_HEADERS` in websockets' header lines."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if len(args) == 2 and isinstance(args[0], str) and args[0].lower() in SECRET_HEADERS:
            args = (args[0], "***")
        super().log(level, msg, *args, **kwargs)
