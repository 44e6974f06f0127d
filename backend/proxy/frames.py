"""``market_data`` frames, built from the publisher's tick payloads with as little work as possible.

A frame is ``{"type": "market_data", "symbol": S, "exchange": E, "mode": m, "data": {...},
"broker": B}``. Everything but ``data`` is fixed for one subscription, so it is serialised once,
as a prefix and a suffix (:class:`FrameParts`). A tick of the subscription's own mode becomes a
frame by joining the prefix, the tick's payload as it arrived, and the suffix: no JSON is parsed or
written. A tick of a higher mode serving a lower-mode subscription is cut down to the lower mode's
fields (:func:`trimmed`), once per mode, whatever the number of clients.

A client that knows a subscription's :func:`frame_prefix` can tell whose a frame is from its first
bytes, without parsing it (the desktop app does, for its watchlist).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from backend.feed import TICK_FIELDS

#: What ends a frame's prefix: the key of its ``data``.
DATA_KEY = b',"data":'


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def frame_prefix(symbol: str, exchange: str, mode: int) -> bytes:
    """The first bytes of every frame of one subscription, up to and including :data:`DATA_KEY`."""
    return (
        b'{"type":"market_data","symbol":'
        + _json(symbol)
        + b',"exchange":'
        + _json(exchange)
        + b',"mode":'
        + _json(mode)
        + DATA_KEY
    )


@dataclass(frozen=True, slots=True)
class FrameParts:
    """The fixed parts of one subscription's frames."""

    prefix: bytes
    suffix: bytes

    @classmethod
    def of(cls, symbol: str, exchange: str, mode: int, broker: str) -> FrameParts:
        return cls(frame_prefix(symbol, exchange, mode), b',"broker":' + _json(broker) + b"}")

    def frame(self, data: bytes) -> bytes:
        """The frame for ``data``, a JSON object already serialised."""
        return self.prefix + data + self.suffix


def trimmed(tick: dict[str, Any], mode: int) -> bytes:
    """The serialised ``data`` of ``tick`` cut down to ``mode``'s fields and tagged ``mode``."""
    data = {field: tick.get(field) for field in TICK_FIELDS[mode]}
    data["mode"] = mode
    return _json(data)
