"""The brokers FeedPool can pool: one package each, listed here once.

A broker's package describes itself as a :class:`~backend.brokers.broker.Broker`; a new broker is
its package and one entry in :data:`BROKERS`.
"""

from __future__ import annotations

from backend.brokers import angel, dhan, zerodha
from backend.brokers.broker import Broker, BrokerSetting

BROKERS: dict[str, Broker] = {
    broker.name: broker for broker in (angel.BROKER, zerodha.BROKER, dhan.BROKER)
}

__all__ = ["BROKERS", "Broker", "BrokerSetting"]
