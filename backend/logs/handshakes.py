"""A logger of handshakes that never writes a credential.

A handshake is logged as its request line (the path with its query) and one
``("< %s: %s", name, value)`` record per header, the form websockets uses at DEBUG level.
SmartStream authenticates with headers, Kite and Dhan with the query string, so the simulator
logs its handshakes through a :class:`MaskedLogger`.
"""

from __future__ import annotations

import logging
import re
from typing import Any

SECRET_HEADERS = frozenset({"authorization", "x-api-key", "x-feed-token"})
SECRET_QUERY = re.compile(r"((?:api_key|access_token|token)=)[^&\s]*")


def mask_query(text: str) -> str:
    """``text`` with the values of credential query parameters replaced by ``***``."""
    return SECRET_QUERY.sub(r"\1***", text)


class MaskedLogger(logging.LoggerAdapter):
    """A logger that masks :data:`SECRET_HEADERS` values and credential query parameters."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if len(args) == 2 and isinstance(args[0], str) and args[0].lower() in SECRET_HEADERS:
            args = (args[0], "***")
        else:
            args = tuple(mask_query(a) if isinstance(a, str) else a for a in args)
        super().log(level, msg, *args, **kwargs)
