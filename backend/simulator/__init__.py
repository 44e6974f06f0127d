"""The bundled exchange simulator: a local broker speaking the protocol of any broker FeedPool
pools, through the dialect the broker's package provides.

:class:`ExchangeSimulator` serves simulated ticks for any instrument of the master over a real
WebSocket server, with the broker's authentication, connection and token limits, and serves the
master in the broker's format, so FeedPool and its tests run without a broker account.
``python -m backend.simulator`` runs it on its own.
"""

from backend.simulator.connection import ConnectionInfo
from backend.simulator.credentials import SimulatorCredentials
from backend.simulator.market import Listing, Market, listing
from backend.simulator.server import ExchangeSimulator

__all__ = [
    "ConnectionInfo",
    "ExchangeSimulator",
    "Listing",
    "Market",
    "SimulatorCredentials",
    "listing",
]
