"""Reading the fields of a monitoring payload: a missing one reads as zero."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def int_field(payload: Mapping[str, Any], name: str) -> int:
    """``payload[name]`` as an int, 0 if missing; ``ValueError`` if it is not a number."""
    return int(payload.get(name) or 0)
