"""The exchange simulator: a broker's market-data WebSocket, its instrument master and its
REST logins, on one aiohttp server.

It plays one broker of :data:`~backend.brokers.BROKERS` (Angel One's SmartStream 2.0 by
default) through the :class:`~backend.simulator.dialect.Dialect` its package provides. The opening
handshake is checked the way the broker checks it: its credentials (HTTP 401 or 403 naming what is
wrong, with ``x-error-message``), the connections per account (HTTP 429), and the path (HTTP 404).
Each accepted connection is a dialect's
:class:`~backend.simulator.connection.SimulatedConnection`.

A plain HTTP ``GET`` of the broker's master path (e.g. ``/instruments``) answers with the
simulator's instruments in the broker's published format, so downloading, caching and reading a
broker's master run for real against it. The broker's REST logins (the dialect's) share the port
and issue the sessions (:class:`~backend.simulator.logins.Logins`) whose tokens the WebSocket
accepts. Nothing logs a request's query or credential headers unmasked: aiohttp's access log is
off, and the handshake's debug lines go through :class:`~backend.logs.handshakes.MaskedLogger`.
"""

from __future__ import annotations

import asyncio
import functools
import http
import io
import itertools
import logging
import posixpath
import zipfile
from collections.abc import Awaitable, Callable, Hashable
from types import TracebackType

import numpy as np
from aiohttp import WSCloseCode, web

from backend.brokers import BROKERS
from backend.instruments.master import Instrument, InstrumentMaster
from backend.logs.handshakes import MaskedLogger
from backend.simulator.clock import MarketClock
from backend.simulator.connection import ConnectionInfo, SimulatedConnection
from backend.simulator.credentials import SimulatorCredentials
from backend.simulator.market import Market

log = logging.getLogger("feedpool.simulator")
wire_log = MaskedLogger(log)

ERROR_HEADER = "x-error-message"
#: How long a closing handshake may take before the socket is closed anyway, in seconds.
CLOSE_TIMEOUT = 2.0
#: The largest request a connection takes; a bigger one closes it with 1009.
MAX_MESSAGE = 2**20


def _refusal(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n", headers={ERROR_HEADER: message})


@functools.lru_cache(maxsize=4)
def broker_view(broker: str, master: InstrumentMaster) -> tuple[bytes, dict[Hashable, Instrument]]:
    """``master`` as ``broker`` publishes it, and the instruments it names by wire key, with the
    bundled reference prices; made once per broker and master in a process, which may run many
    simulators on one master (the tests do).

    The instruments are read back from the document with the broker's own reader, the one
    FeedPool uses on the real broker's master, so both sides agree on every token.
    """
    described = BROKERS[broker]
    key = described.simulator_dialect().key
    document = described.write_master(master)
    view = {}
    for i in described.read_master(document, "the simulator"):
        price = master.get(i.symbol, i.exchange).price
        view[key(i)] = Instrument(
            i.token,
            i.symbol,
            i.name,
            i.exchange,
            i.instrument_type,
            i.lot_size,
            i.tick_size,
            i.expiry,
            i.strike,
            price,
        )
    return document, view


def _report_failure(task: asyncio.Task) -> None:
    """Log why the market's clock stopped, unless it was stopped."""
    if not task.cancelled() and task.exception() is not None:
        log.error("the market clock failed: no more ticks", exc_info=task.exception())


class ExchangeSimulator:
    """A broker's market-data feed and REST logins over a real aiohttp server.

    Args:
        master: The instruments whose prices it simulates, in the bundled format; other tokens
            get synthetic prices.
        broker: The broker it plays, by its name in :data:`~backend.brokers.BROKERS`.
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
        if broker not in BROKERS:
            raise ValueError(f"no simulated broker {broker!r}; known: {', '.join(BROKERS)}")
        if ticks_per_second < 0:
            raise ValueError(f"ticks_per_second must be 0 or more, not {ticks_per_second}")
        self.broker = BROKERS[broker]
        self.dialect = self.broker.simulator_dialect()
        self.max_connections = max_connections or self.broker.max_connections
        self.max_tokens = max_tokens or self.broker.max_symbols
        if self.max_connections < 1 or self.max_tokens < 1:
            raise ValueError("max_connections and max_tokens must be at least 1")
        self.credentials = credentials or SimulatorCredentials()
        #: The sessions the REST logins issued, and which tokens are still good.
        self.logins = self.dialect.logins(self.credentials)
        self.ticks_per_second = ticks_per_second
        #: The master as the broker publishes it, and the instruments it names, by wire key.
        self.master_document, self.instruments = broker_view(broker, master)
        market = Market(self.instruments, self.dialect.exchange_of, seed)
        spacing = np.random.default_rng(market.random("spacing").getrandbits(64))
        self._clock = MarketClock(market, ticks_per_second, spacing)
        self._clock_task: asyncio.Task | None = None
        self._runner: web.AppRunner | None = None
        self._root = ""
        self._ids = itertools.count(1)
        # Connections holding a slot, from an accepted handshake until they start closing.
        self._slots: dict[str, set[web.WebSocketResponse]] = {}
        self._connections: dict[int, SimulatedConnection] = {}

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host`` and ``port`` (0: a free port, see :attr:`url`)."""
        if self._runner is not None:
            raise RuntimeError("the simulator is already started")
        app = web.Application()
        app.router.add_get(self.dialect.path, self._serve)
        if self.broker.master_files:  # published in several files: each at its own path
            folder = posixpath.dirname(self.broker.master_path).rstrip("/")
            with zipfile.ZipFile(io.BytesIO(self.master_document)) as files:
                for name in files.namelist():
                    served = functools.partial(self._master, body=files.read(name))
                    app.router.add_get(f"{folder}/{name}", served)
        else:
            app.router.add_get(self.broker.master_path, self._master)
        app.router.add_routes(self.dialect.rest_routes(self.logins))
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=CLOSE_TIMEOUT)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._clock_task = asyncio.create_task(self._clock.run())
        self._clock_task.add_done_callback(_report_failure)
        bound_host, bound_port = runner.addresses[0][:2]
        if ":" in bound_host:
            bound_host = f"[{bound_host}]"
        self._root = f"{bound_host}:{bound_port}"
        log.info("exchange simulator (%s) listening on %s", self.broker.label, self.url)

    @property
    def url(self) -> str:
        """The WebSocket endpoint: ``ws://127.0.0.1:PORT/smart-stream``, or Kite's root."""
        return "ws://" + self._started_root() + self.dialect.path.rstrip("/")

    @property
    def master_url(self) -> str:
        """Where the instrument master is served, in the broker's format."""
        return "http://" + self._started_root() + self.broker.master_path

    @property
    def rest_url(self) -> str:
        """The root of the broker's REST logins: ``http://127.0.0.1:PORT``, a ``root=``."""
        return "http://" + self._started_root()

    def _started_root(self) -> str:
        if self._runner is None:
            raise RuntimeError("the simulator is not started")
        return self._root

    async def stop(self) -> None:
        """Close every connection (code 1001) and stop listening."""
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        await self._close_all(
            lambda connection: connection.websocket.close(
                code=WSCloseCode.GOING_AWAY, message=b"server shutting down"
            )
        )
        await runner.cleanup()
        if self._clock_task is not None:
            self._clock_task.cancel()
            await asyncio.gather(self._clock_task, return_exceptions=True)
            self._clock_task = None
        log.info("exchange simulator stopped")

    async def __aenter__(self) -> ExchangeSimulator:
        if self._runner is None:
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
        return [connection.info for connection in self._connections.values()]

    def connection_holding(self, key: Hashable) -> int | None:
        """The id of the (oldest) connection holding the token ``key``, or :obj:`None`."""
        return next((c.id for c in self._connections.values() if c.holds(key)), None)

    def _connection(self, connection_id: int) -> SimulatedConnection:
        try:
            return self._connections[connection_id]
        except KeyError:
            raise KeyError(f"no open connection {connection_id}") from None

    async def drop(self, connection_id: int) -> None:
        """Close a connection abruptly, without a closing handshake; the client sees 1006.

        Returns once the connection's slot is free. :exc:`KeyError` if no such connection is open.
        """
        connection = self._connection(connection_id)
        log.info("connection %d: dropping on command", connection_id)
        connection.transport.abort()
        await connection.finished.wait()

    def mute(self, connection_id: int) -> None:
        """Send no more ticks on a connection, which stays open and answers requests and pings.

        :exc:`KeyError` if no such connection is open.
        """
        self._connection(connection_id).mute()
        log.info("connection %d: muted on command", connection_id)

    def set_rate(self, ticks_per_second: float) -> None:
        """Tick every held token ``ticks_per_second`` times a second on average from now on, on
        the open connections and the next ones; ``ValueError`` unless it is a number more than 0,
        or if the simulator was made to send snapshots only (0)."""
        if isinstance(ticks_per_second, bool) or not isinstance(ticks_per_second, int | float):
            raise ValueError(f"ticks_per_second must be a number, not {ticks_per_second!r}")
        if ticks_per_second <= 0:
            raise ValueError(f"ticks_per_second must be more than 0, not {ticks_per_second}")
        if self.ticks_per_second == 0:
            raise ValueError("this simulator sends snapshots only (started at 0 ticks per second)")
        self.ticks_per_second = ticks_per_second
        self._clock.set_rate(ticks_per_second)
        log.info("tick rate set to %g per token per second", ticks_per_second)

    async def expire_sessions(self) -> None:
        """End the broker's sessions, as the broker does every day.

        Every token issued so far, the fixed ones included, is refused from now on (Angel One
        HTTP 401, Kite HTTP 403, Dhan's 807 after the upgrade), and every open connection is
        closed as the broker closes it (:meth:`SimulatedConnection.expire`: code 1008; Dhan
        sends 807 first). Returns once they are. A fresh login issues tokens that work.
        """
        self.logins.expire()
        log.info("sessions expired: every token issued so far is refused")
        await self._close_all(lambda connection: connection.expire())

    async def _close_all(self, close: Callable[[SimulatedConnection], Awaitable[object]]) -> None:
        """Close every open connection with ``close(connection)``; return once they are closed."""
        connections = list(self._connections.values())
        await asyncio.gather(*(close(c) for c in connections))
        await asyncio.gather(*(c.finished.wait() for c in connections))

    # Handshake, master and connections

    def _log_handshake(self, request: web.Request) -> None:
        """The request line and headers at DEBUG level, credentials masked."""
        if log.isEnabledFor(logging.DEBUG):
            wire_log.debug("< %s %s", request.method, request.path_qs)
            for name, value in request.headers.items():
                wire_log.debug("< %s: %s", name, value)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        """Refuse bad credentials or one connection too many; serve an accepted connection."""
        self._log_handshake(request)
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport else None
        message = self.dialect.refused(self.logins, request)
        if message is not None:
            log.info("refused connection from %s: %s", peer, message)
            return _refusal(self.dialect.refusal_status, message)
        websocket = web.WebSocketResponse(
            timeout=CLOSE_TIMEOUT, compress=False, max_msg_size=MAX_MESSAGE
        )
        if transport is None or not websocket.can_prepare(request).ok:
            return web.Response(status=http.HTTPStatus.UPGRADE_REQUIRED, text="Upgrade Required\n")
        client_code = self.dialect.account(self.credentials, request)
        slots = {held for held in self._slots.get(client_code, ()) if not held.closed}
        if len(slots) >= self.max_connections and self.dialect.closes_oldest:
            await self._close_oldest(slots)
            slots = {held for held in slots if not held.closed}
        if len(slots) >= self.max_connections:
            log.info(
                "refused connection from %s: %d connections already open for %s",
                peer,
                len(slots),
                client_code,
            )
            return _refusal(http.HTTPStatus.TOO_MANY_REQUESTS, self.dialect.connection_limit)
        slots.add(websocket)
        self._slots[client_code] = slots
        try:
            await websocket.prepare(request)
            await self._run_connection(websocket, request, client_code, peer)
        finally:
            slots.discard(websocket)
        return websocket

    async def _close_oldest(self, slots: set[web.WebSocketResponse]) -> None:
        """Close the oldest connection holding one of ``slots`` for a newer one, as a broker
        that closes the oldest past its limit does (:attr:`Dialect.closes_oldest`)."""
        oldest = next((c for c in self._connections.values() if c.websocket in slots), None)
        if oldest is not None:
            log.info("connection %d: closed for a newer one of %s", oldest.id, oldest.account)
            await oldest.displace()

    async def _master(self, request: web.Request, body: bytes | None = None) -> web.Response:
        body = self.master_document if body is None else body
        kind = "application/json" if body[:1] == b"[" else "text/csv"
        log.info("served the instrument master (%d bytes)", len(body))
        return web.Response(body=body, content_type=kind)

    async def _run_connection(
        self,
        websocket: web.WebSocketResponse,
        request: web.Request,
        client_code: str,
        peer: object,
    ) -> None:
        connection_id = next(self._ids)
        connection = self.dialect.connection(
            connection_id,
            client_code,
            websocket,
            request,
            self._clock,
            max_tokens=self.max_tokens,
        )
        self._connections[connection.id] = connection
        log.info("connection %d: accepted for %s from %s", connection.id, client_code, peer)
        try:
            await connection.run()
        finally:
            del self._connections[connection.id]
            connection.finished.set()
            log.info("connection %d: closed (code %s)", connection.id, websocket.close_code)
