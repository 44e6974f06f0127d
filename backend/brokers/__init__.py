"""The brokers FeedPool can pool: one package each, listed here once.

A broker's package describes itself as a :class:`~backend.brokers.broker.Broker`; a new broker is
its package and one entry in :data:`BROKERS`.
"""

from __future__ import annotations

from backend.brokers import angel, dhan, noren, zerodha
from backend.brokers.broker import Broker, BrokerSetting

BROKERS: dict[str, Broker] = {
    broker.name: broker for broker in (angel.BROKER, zerodha.BROKER, dhan.BROKER, *noren.BROKERS)
}
#: Families of brokers on one platform, by the family's name: its vendors' names, default first.
FAMILIES: dict[str, tuple[str, ...]] = {"noren": tuple(broker.name for broker in noren.BROKERS)}

__all__ = ["BROKERS", "FAMILIES", "Broker", "BrokerSetting"]
