"""How the simulator plays one broker: its :class:`Dialect`, which the broker's package provides
(:attr:`~backend.brokers.broker.Broker.simulator_dialect`)."""

from __future__ import annotations

import http
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from aiohttp import web

from backend.instruments.master import Instrument
from backend.simulator.connection import SimulatedConnection
from backend.simulator.credentials import SimulatorCredentials
from backend.simulator.logins import Logins


@dataclass(frozen=True, slots=True)
class Dialect:
    """How the simulator speaks one broker's protocol: its handshake, its keys, its connections
    and its REST logins."""

    #: The WebSocket's path.
    path: str
    #: The HTTP status of a handshake refused for its credentials, and why it was.
    refusal_status: http.HTTPStatus
    refused: Callable[[Logins, web.Request], str | None]
    #: Who the handshake is for: connections are counted per account.
    account: Callable[[SimulatorCredentials, web.Request], str]
    #: The text of the refusal of one connection too many (HTTP 429).
    connection_limit: str
    #: The broker's key for a token on the wire, and the exchange of a key not in the master.
    key: Callable[[Instrument], Hashable]
    exchange_of: Callable[[Hashable], str]
    connection: type[SimulatedConnection]
    #: The sessions the broker's logins issue, for the simulator's account...
    logins: Callable[[SimulatorCredentials], Logins]
    #: ... and the broker's REST login routes, issuing and checking them.
    rest_routes: Callable[[Logins], list[web.RouteDef]]
    #: Whether one connection too many closes the account's oldest
    #: (:meth:`SimulatedConnection.displace`) instead of being refused.
    closes_oldest: bool = False
