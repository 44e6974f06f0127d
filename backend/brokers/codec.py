"""What the brokers' wire codecs share: the error of a malformed frame, and a JSON text frame
read as an object."""

from __future__ import annotations

import json
from typing import Any


class ProtocolError(ValueError):
    """A frame, packet or request that does not follow its broker's protocol."""


def json_object(text: str, what: str) -> dict[str, Any]:
    """``text`` as a JSON object; :class:`ProtocolError` saying ``what`` was not one."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # ValueError: also a number past int's 4,300 digits
        raise ProtocolError(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} is not a JSON object")
    return value
