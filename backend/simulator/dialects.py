"""The brokers the simulator plays: for each, its handshake, its keys, its sessions and its
REST logins."""

from __future__ import annotations

import http
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from aiohttp import web

from backend.brokers.angel.protocol import HTTP_CONNECTION_LIMIT
from backend.instruments.master import Instrument
from backend.simulator import angel_rest, kite, kite_rest, smartstream
from backend.simulator.connection import Session
from backend.simulator.credentials import SimulatorCredentials
from backend.simulator.logins import Logins


@dataclass(frozen=True, slots=True)
class Dialect:
    """How the simulator speaks one broker's protocol."""

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
    session: type[Session]
    #: The broker's REST login routes, issuing and checking sessions.
    rest_routes: Callable[[Logins], list[web.RouteDef]]


DIALECTS = {
    "angel": Dialect(
        smartstream.PATH,
        http.HTTPStatus.UNAUTHORIZED,
        smartstream.refused,
        smartstream.account,
        HTTP_CONNECTION_LIMIT,
        smartstream.key,
        smartstream.exchange_of,
        smartstream.SmartStreamSession,
        angel_rest.routes,
    ),
    "zerodha": Dialect(
        kite.PATH,
        http.HTTPStatus.FORBIDDEN,
        kite.refused,
        kite.account,
        "Too many connections",
        kite.key,
        kite.exchange_of,
        kite.KiteSession,
        kite_rest.routes,
    ),
}
