"""The exchange simulator: a broker's market-data WebSocket server, and its instrument master.

It plays one broker (Angel One's SmartStream 2.0 by default, or Zerodha's KiteTicker) through
that broker's :class:`~backend.simulator.dialects.Dialect`. The opening handshake is checked the
way the broker checks it: its credentials (HTTP 401 or 403 naming what is wrong) and the
connections per account (HTTP 429). Each accepted connection is a dialect's
:class:`~backend.simulator.session.Session`.

A plain HTTP ``GET`` of the broker's master path (e.g. ``/instruments``) answers with the
simulator's instruments in the broker's published format, so downloading, caching and reading a
broker's master run for real against it.
"""

from __future__ import annotations

import dataclasses
import http
import itertools
import logging
from collections.abc import Hashable
from types import TracebackType
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.protocol import State

from backend.brokers import BROKERS
from backend.instruments import Instrument, InstrumentMaster
from backend.simulator.credentials import SimulatorCredentials
from backend.simulator.dialects import DIALECTS
from backend.simulator.market import Market
from backend.simulator.session import ConnectionInfo, Session
from backend.wire_log import MaskedLogger

log = logging.getLogger("feedpool.simulator")

ERROR_HEADER = "x-error-message"


def _refusal(connection: ServerConnection, status: http.HTTPStatus, message: str) -> Response:
    response = connection.respond(status, message + "\n")
    response.headers[ERROR_HEADER] = message
    return response


class ExchangeSimulator:
    """A broker's market-data feed over a real WebSocket server.

    Args:
        master: The instruments whose prices it simulates, in the bundled format; other tokens
            get synthetic prices.
        broker: The broker it plays: ``angel`` (SmartStream 2.0) or ``zerodha`` (KiteTicker).
        credentials: The account it accepts; :obj:`None` for :class:`SimulatorCredentials`'s
            defaults.
        ticks_per_second: Mean ticks per second of each subscribed token, spaced at random;
            0 sends only the snapshot that follows a subscription.
        seed: Makes prices and tick spacing repeatable; :obj:`None` for a fresh market.
        max_connections: Concurrent connections per account; :obj:`None`: the broker's.
        max_tokens: Distinct tokens per connection; :obj:`None`: the broker's.

    Start it with :meth:`start` and stop it with :meth:`stop`, or use ``async with``.
    """

    def __init__(
        self,
        master: InstrumentMaster,
        credentials: SimulatorCredentials | None = None,
        *,
        broker: str = "angel",
        ticks_per_second: float = 1.0,
        seed: int | str | None = None,
        max_connections: int | None = None,
        max_tokens: int | None = None,
    ) -> None:
        if broker not in DIALECTS:
            raise ValueError(f"no simulated broker {broker!r}; known: {', '.join(DIALECTS)}")
        if ticks_per_second < 0:
            raise ValueError(f"ticks_per_second must be 0 or more, not {ticks_per_second}")
        self.broker = BROKERS[broker]
        self.dialect = DIALECTS[broker]
        self.max_connections = max_connections or self.broker.max_connections
        self.max_tokens = max_tokens or self.broker.max_symbols
        if self.max_connections < 1 or self.max_tokens < 1:
            raise ValueError("max_connections and max_tokens must be at least 1")
        self.credentials = credentials or SimulatorCredentials()
        self.ticks_per_second = ticks_per_second
        #: The master as the broker publishes it, and the instruments it names, by wire key.
        self.master_document = self.broker.write_master(master)
        self.instruments = self._broker_view(master)
        self._market = Market(self.instruments, self.dialect.exchange_of, seed)
        self._server: Server | None = None
        self._root = ""
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
            logger=MaskedLogger(logging.getLogger("websockets.server")),
        )
        bound_host, bound_port = self._server.sockets[0].getsockname()[:2]
        if ":" in bound_host:
            bound_host = f"[{bound_host}]"
        self._root = f"{bound_host}:{bound_port}"
        log.info("exchange simulator (%s) listening on %s", self.broker.label, self.url)

    def _broker_view(self, master: InstrumentMaster) -> dict[Hashable, Instrument]:
        """The instruments as the broker's master names them, with the bundled reference prices.

        They are read back from :attr:`master_document` with the broker's own reader, the one
        FeedPool uses on the real broker's master, so both sides agree on every token.
        """
        view = {}
        for instrument in self.broker.read_master(self.master_document, "the simulator"):
            bundled = master.get(instrument.symbol, instrument.exchange)
            view[self.dialect.key(instrument)] = dataclasses.replace(
                instrument, price=bundled.price
            )
        return view

    @property
    def url(self) -> str:
        """The WebSocket endpoint: ``ws://127.0.0.1:PORT/smart-stream``, or Kite's root."""
        return "ws://" + self._started_root() + self.dialect.path.rstrip("/")

    @property
    def master_url(self) -> str:
        """Where the instrument master is served, in the broker's format."""
        return "http://" + self._started_root() + self.broker.master_path

    def _started_root(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return self._root

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

    def connection_holding(self, key: Hashable) -> int | None:
        """The id of the (oldest) connection holding the token ``key``, or :obj:`None`."""
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
        """Serve the master; refuse a wrong path (404), bad credentials, one connection too many."""
        path = urlsplit(request.path).path
        if path == self.broker.master_path:
            return self._master_response()
        if path != self.dialect.path:
            return connection.respond(http.HTTPStatus.NOT_FOUND, "Not Found\n")
        peer = connection.remote_address
        message = self.dialect.refused(self.credentials, request)
        if message is not None:
            log.info("refused connection from %s: %s", peer, message)
            return _refusal(connection, self.dialect.refusal_status, message)
        client_code = self.dialect.account(self.credentials, request)
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
            return _refusal(
                connection, http.HTTPStatus.TOO_MANY_REQUESTS, self.dialect.connection_limit
            )
        slots.add(connection)
        self._slots[client_code] = slots
        return None

    def _master_response(self) -> Response:
        body = self.master_document
        kind = "application/json" if body[:1] == b"[" else "text/csv"
        headers = Headers([("Content-Type", kind), ("Content-Length", str(len(body)))])
        log.info("served the instrument master (%d bytes)", len(body))
        return Response(http.HTTPStatus.OK, "OK", headers, body)

    async def _serve(self, websocket: ServerConnection) -> None:
        client_code = self.dialect.account(self.credentials, websocket.request)
        connection_id = next(self._ids)
        session: Session = self.dialect.session(
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
