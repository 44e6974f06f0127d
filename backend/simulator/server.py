"""The exchange simulator: a SmartStream 2.0 WebSocket server on ``/smart-stream``.

The opening handshake is checked the way the broker checks it: the four credential headers
(HTTP 401 with ``x-error-message`` naming the bad one) and the connections per client code
(HTTP 429). Each accepted connection is a :class:`~backend.simulator.session.Session`.
"""

from __future__ import annotations

import http
import itertools
import logging
from types import TracebackType
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response
from websockets.protocol import State

from backend.instruments import InstrumentMaster
from backend.simulator.credentials import SimulatorCredentials
from backend.simulator.market import Market
from backend.simulator.session import ConnectionInfo, Session
from backend.smartstream.protocol import HTTP_AUTH_ERRORS, HTTP_CONNECTION_LIMIT
from backend.wire_log import MaskedHeadersLogger

log = logging.getLogger("feedpool.simulator")

PATH = "/smart-stream"
ERROR_HEADER = "x-error-message"


def _refusal(connection: ServerConnection, status: http.HTTPStatus, message: str) -> Response:
    response = connection.respond(status, message + "\n")
    response.headers[ERROR_HEADER] = message
    return response


class ExchangeSimulator:
    """A broker that speaks SmartStream 2.0 over a real WebSocket server.

    Args:
        master: The instruments whose prices it simulates; other tokens get synthetic ones.
        credentials: The account it accepts; :obj:`None` for :class:`SimulatorCredentials`'s
            defaults.
        ticks_per_second: Mean ticks per second of each subscribed token, spaced at random;
            0 sends only the snapshot that follows a subscription.
        seed: Makes prices and tick spacing repeatable; :obj:`None` for a fresh market.
        max_connections: Concurrent connections per client code.
        max_tokens: Distinct tokens per connection.

    Start it with :meth:`start` and stop it with :meth:`stop`, or use ``async with``.
    """

    def __init__(
        self,
        master: InstrumentMaster,
        credentials: SimulatorCredentials | None = None,
        *,
        ticks_per_second: float = 1.0,
        seed: int | str | None = None,
        max_connections: int = 3,
        max_tokens: int = 1000,
    ) -> None:
        if ticks_per_second < 0:
            raise ValueError(f"ticks_per_second must be 0 or more, not {ticks_per_second}")
        if max_connections < 1 or max_tokens < 1:
            raise ValueError("max_connections and max_tokens must be at least 1")
        self.credentials = credentials or SimulatorCredentials()
        self.ticks_per_second = ticks_per_second
        self.max_connections = max_connections
        self.max_tokens = max_tokens
        self._market = Market(master, seed)
        self._server: Server | None = None
        self._url = ""
        self._ids = itertools.count(1)
        # Connections holding a slot, from an accepted handshake until they close.
        self._slots: dict[str, set[ServerConnection]] = {}
        self._sessions: dict[int, Session] = {}

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host`` and ``port`` (0: a free port, see :attr:`url`)."""
        if self._server is not None:
            raise RuntimeError("the simulator is already started")
        self._server = await serve(
            self._serve,
            host,
            port,
            process_request=self._check_handshake,
            compression=None,
            logger=MaskedHeadersLogger(logging.getLogger("websockets.server")),
        )
        bound_host, bound_port = self._server.sockets[0].getsockname()[:2]
        if ":" in bound_host:
            bound_host = f"[{bound_host}]"
        self._url = f"ws://{bound_host}:{bound_port}{PATH}"
        log.info("exchange simulator listening on %s", self._url)

    @property
    def url(self) -> str:
        """The endpoint to connect to, such as ``ws://127.0.0.1:PORT/smart-stream``."""
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return self._url

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        await server.wait_closed()
        log.info("exchange simulator stopped")

    async def __aenter__(self) -> ExchangeSimulator:
        if self._server is None:
            await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def connections(self) -> list[ConnectionInfo]:
        """The open connections, oldest first."""
        return [session.info for session in self._sessions.values()]

    def connection_holding(self, exchange_type: int, token: str) -> int | None:
        """The id of the (oldest) connection holding the token, or :obj:`None`."""
        key = (exchange_type, token)
        return next((s.id for s in self._sessions.values() if s.holds(key)), None)

    async def drop(self, connection_id: int) -> None:
        """Close a connection abruptly, without a closing handshake; the client sees 1006.

        Returns once the connection's slot is free. :exc:`KeyError` if no such connection is open.
        """
        try:
            session = self._sessions[connection_id]
        except KeyError:
            raise KeyError(f"no open connection {connection_id}") from None
        log.info("connection %d: dropping on command", connection_id)
        session.websocket.transport.abort()
        await session.finished.wait()

    # Handshake and connections

    def _check_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse a wrong path (404), bad credentials (401) or one connection too many (429)."""
        if urlsplit(request.path).path != PATH:
            return connection.respond(http.HTTPStatus.NOT_FOUND, "Not Found\n")
        peer = connection.remote_address
        header = self.credentials.rejected_header(request.headers)
        if header is not None:
            message = HTTP_AUTH_ERRORS[header]
            log.info("refused connection from %s: %s", peer, message)
            return _refusal(connection, http.HTTPStatus.UNAUTHORIZED, message)
        client_code = request.headers["x-client-code"]
        # A connection stops holding a slot as soon as it starts closing, or fails its handshake.
        slots = {
            held
            for held in self._slots.get(client_code, ())
            if held.state in (State.CONNECTING, State.OPEN)
        }
        if len(slots) >= self.max_connections:
            log.info(
                "refused connection from %s: %d connections already open for %s",
                peer,
                len(slots),
                client_code,
            )
            return _refusal(connection, http.HTTPStatus.TOO_MANY_REQUESTS, HTTP_CONNECTION_LIMIT)
        slots.add(connection)
        self._slots[client_code] = slots
        return None

    async def _serve(self, websocket: ServerConnection) -> None:
        client_code = websocket.request.headers["x-client-code"]
        connection_id = next(self._ids)
        session = Session(
            connection_id,
            client_code,
            websocket,
            self._market,
            ticks_per_second=self.ticks_per_second,
            max_tokens=self.max_tokens,
            rng=self._market.random(f"connection:{connection_id}"),
        )
        self._sessions[session.id] = session
        log.info(
            "connection %d: accepted for %s from %s",
            session.id,
            client_code,
            websocket.remote_address,
        )
        try:
            await session.run()
        finally:
            del self._sessions[session.id]
            self._slots[client_code].discard(websocket)
            session.finished.set()
            log.info("connection %d: closed (code %s)", session.id, websocket.close_code)
