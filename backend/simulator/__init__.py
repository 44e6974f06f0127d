"""The bundled exchange simulator: a local broker that speaks Angel One's SmartStream 2.0.

:class:`ExchangeSimulator` serves simulated ticks for any instrument of the master over a real
WebSocket server, with the broker's authentication, connection and token limits, so FeedPool and
its tests run without a broker account. ``python -m backend.simulator`` runs it on its own.
"""

from backend.simulator.credentials import SimulatorCredentials
from backend.simulator.market import Listing, Market, PriceWalk, listing
from backend.simulator.server import PATH, ExchangeSimulator
from backend.simulator.session import ConnectionInfo

__all__ = [
    "PATH",
    "ConnectionInfo",
    "ExchangeSimulator",
    "Listing",
    "Market",
    "PriceWalk",
    "SimulatorCredentials",
    "listing",
]
