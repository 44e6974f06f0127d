"""Which broker account carried each tick: the bus publisher as one account's connections see it."""

from __future__ import annotations

from typing import Any

from backend.bus.publisher import ZmqPublisher


class CarrierTap:
    """The bus publisher as one account's connections see it: every tick they publish is noted
    in ``carried`` as that account's, by subscription (``b"NSE_SBIN"``) and timestamp, then
    published."""

    def __init__(self, publisher: ZmqPublisher, account: str, carried: dict) -> None:
        self._publisher = publisher
        self._account = account
        self._carried = carried

    def publish_tick(self, topic: bytes, tick: dict[str, Any]) -> None:
        key = f"{tick['exchange']}_{tick['symbol']}".encode()
        self._carried[key, tick["timestamp"]] = self._account
        self._publisher.publish_tick(topic, tick)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._publisher, name)
