"""The WebSocket proxy: FeedPool's OpenAlgo-compatible client API, ``ws://127.0.0.1:8765``.

Given an SSL context, it serves ``wss://`` instead (see :mod:`backend.security.certificate`); the
clients authenticate with the API key all the same.

Each connection is a :class:`~backend.proxy.client.Client`; its messages are carried out
one at a time by :class:`~backend.proxy.actions.Actions`; ticks reach it through the
:class:`~backend.proxy.ticks.TickRouter`, which the bus publisher calls in the process with each
tick (its ``tick_listener``). The URL path is ignored.

- A connection past ``max_clients_per_address`` open from one address is closed at once with
  code 1013 (try again later), reason ``too many connections from ADDRESS (limit N)``; wrong
  API keys slow down their address's authentications (see :mod:`backend.proxy.limits`).
- A client that has not authenticated within :data:`AUTH_TIMEOUT` seconds is closed with code
  4401, reason ``auth timeout``.
- A frame over :data:`~backend.proxy.messages.MAX_MESSAGE_BYTES` closes the connection with code
  1009 (message too big).
- A client whose outbox stays full for :data:`~backend.proxy.outbox.STALL_SECONDS` is closed with
  code 1008 and a reason that says it is not reading.
- When a client's connection closes, the client is no longer listed, its ticks stop and the pool
  lets go of exactly what it held; other clients' subscriptions of the same symbols keep ticking.
  A request it had in flight is carried out to the end, and the pool then lets go of what that
  got too.
- :meth:`WebSocketProxy.close` closes every client with 1001 (going away) and cuts those that do
  not answer in time.

Faults a client can repeat at will (refused connections, wrong keys, malformed messages, auth
timeouts) are counted in :meth:`WebSocketProxy.stats` and logged a line an interval through one
:class:`~backend.logs.faults.FaultLog`. ``docs/client-api-limits.md`` lists every bound.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
from collections.abc import Hashable

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.frames import CloseCode

from backend.bus.messages import ClientApiStats, ClientStats
from backend.feed import BROKER_CONNECTION_ERROR
from backend.logs.faults import INTERVAL_SECONDS, FaultLog
from backend.logs.wording import counted
from backend.pool.accounts import PooledAccounts
from backend.proxy import replies
from backend.proxy.actions import Actions
from backend.proxy.client import Client
from backend.proxy.index import SubscriptionIndex
from backend.proxy.limits import (
    AUTH_FAILURES_BEFORE_DELAY,
    FIRST_AUTH_DELAY,
    MAX_CLIENTS_PER_ADDRESS,
    AuthBackoff,
    ConnectionLimit,
)
from backend.proxy.messages import MAX_MESSAGE_BYTES
from backend.proxy.outbox import OUTBOX_LIMIT, STALL_SECONDS
from backend.proxy.ticks import TickRouter
from backend.security.exposure import WILDCARDS, local_url
from backend.security.secret import Secret
from backend.wire.batch import release_parser

log = logging.getLogger("feedpool.proxy")

AUTH_TIMEOUT = 15.0
CLOSE_AUTH_TIMEOUT = 4401
#: How long a client may take to answer the closing handshake when the proxy shuts down.
SHUTDOWN_CLOSE_TIMEOUT = 0.5
PING_INTERVAL = 20.0

#: The websockets library's own records (a line per connection at INFO) stay below the proxy's.
WIRE_LOG = logging.getLogger("feedpool.proxy.wire")
WIRE_LOG.setLevel(logging.WARNING)


class WebSocketProxy:
    """Serves the client API for ``pool`` on ``host:port`` (port 0: a free port, see :attr:`url`).

    Ticks come from ``pool``'s publisher, in the process. With ``ssl_context`` the clients
    connect over TLS.
    ``min_interval_ms`` above 0 limits each client to one update per subscription per interval
    (see :mod:`backend.proxy.throttle`). ``max_clients_per_address`` and
    ``auth_failures_before_delay`` are the per-address limits (see :mod:`backend.proxy.limits`).
    The other arguments exist for tests.
    """

    def __init__(
        self,
        pool: PooledAccounts,
        api_key: Secret,
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        min_interval_ms: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        auth_timeout: float = AUTH_TIMEOUT,
        outbox_limit: int = OUTBOX_LIMIT,
        stall_seconds: float = STALL_SECONDS,
        max_clients_per_address: int = MAX_CLIENTS_PER_ADDRESS,
        auth_failures_before_delay: int = AUTH_FAILURES_BEFORE_DELAY,
        first_auth_delay: float = FIRST_AUTH_DELAY,
        fault_interval: float = INTERVAL_SECONDS,
    ) -> None:
        self.pool = pool
        self.host = host
        self.port = port
        self.min_interval = min_interval_ms / 1000
        self.ssl_context = ssl_context
        self.auth_timeout = auth_timeout
        self.outbox_limit = outbox_limit
        self.stall_seconds = stall_seconds
        self.subscription_index = SubscriptionIndex(pool.broker)
        self.faults = FaultLog(log, "Client API: ", interval=fault_interval)
        self.connection_limit = ConnectionLimit(max_clients_per_address)
        self.actions = Actions(
            pool,
            self.subscription_index,
            api_key,
            AuthBackoff(auth_failures_before_delay, first_auth_delay),
            self.faults,
        )
        #: Connected clients by number.
        self.sessions: dict[int, Client] = {}
        #: Clients gone and not yet forgotten: their request in flight is carried out first.
        self._leaving: set[Client] = set()
        self._numbers = itertools.count(1)
        self._server: Server | None = None
        self._router: TickRouter | None = None
        self._closing = False
        pool.notice_listeners.append(self._notify)

    @property
    def url(self) -> str:
        """Where clients on this machine connect, such as ``ws://127.0.0.1:8765`` (``wss://``
        over TLS); a wildcard host is given as loopback (see :mod:`backend.security.exposure`)."""
        return local_url("ws" if self.ssl_context is None else "wss", self.host, self.port)

    async def start(self) -> None:
        """Start taking ticks and listening; :class:`OSError` if the port is taken."""
        self._router = TickRouter(self.subscription_index)
        self.pool.publisher.tick_listener = self._router
        try:
            self._server = await serve(
                self._serve,
                self.host,
                self.port,
                compression=None,
                ssl=self.ssl_context,
                max_size=MAX_MESSAGE_BYTES,
                ping_interval=PING_INTERVAL,
                ping_timeout=PING_INTERVAL,
                logger=WIRE_LOG,
            )
        except BaseException:
            self._stop_routing()
            raise
        self.port = self._server.sockets[0].getsockname()[1]
        where = self.url
        if self.host in WILDCARDS:
            where = f"{self.host}:{self.port}, {self.url} from this machine"
        log.info("Client API listening on %s", where)

    async def _serve(self, websocket: ServerConnection) -> None:
        address = websocket.remote_address[0]
        if not self.connection_limit.admit(address):
            reason = f"too many connections from {address} (limit {self.connection_limit.limit})"
            self.faults.report("refused a connection", "%s", reason)
            await websocket.close(CloseCode.TRY_AGAIN_LATER, reason)
            release_parser(websocket)
            return
        client = Client(
            next(self._numbers),
            websocket,
            self.actions.handle,
            min_interval=self.min_interval,
            outbox_limit=self.outbox_limit,
            stall_seconds=self.stall_seconds,
        )
        self.sessions[client.number] = client
        log.info("Client %d connected from %s", client.number, client.peer)
        timer = asyncio.get_running_loop().call_later(self.auth_timeout, self._auth_expired, client)
        try:
            await websocket.wait_closed()
        finally:
            timer.cancel()
            await self._forget(client)

    def _notify(self, message: str, holders: set[Hashable]) -> None:
        """Tell each client among ``holders`` that symbols it holds stopped ticking, once."""
        notice = replies.error(BROKER_CONNECTION_ERROR, message)
        told = [client for client in self.sessions.values() if client in holders]
        for client in told:
            client.notify(notice)
        if told:
            log.warning("Told %s: %s", counted(len(told), "client"), message)

    def _auth_expired(self, client: Client) -> None:
        if not client.authenticated:
            self.faults.report(
                "closed a client not authenticated in time",
                "client %d (%s), after %g s",
                client.number,
                client.peer,
                self.auth_timeout,
            )
            client.close_soon(CLOSE_AUTH_TIMEOUT, "auth timeout")

    async def _forget(self, client: Client) -> None:
        """A client left: unlist it, stop its ticks and let the pool go of what it held, then of
        what its request in flight got once that is done."""
        del self.sessions[client.number]
        self.connection_limit.release(client.address)
        client.leave()
        self._leaving.add(client)
        if self._closing:
            client.abandon()
        held = await self._release(client)
        await client.finished()
        held += await self._release(client)
        self._leaving.discard(client)
        code, reason = client.websocket.close_code, client.websocket.close_reason
        log.info(
            "Client %d (%s) disconnected (%s): released %d subscriptions; "
            "%d ticks sent, %d conflated, %d throttled",
            client.number,
            client.peer,
            f"{code} {reason}".strip() if code else "connection lost",
            held,
            client.sent,
            client.outbox.conflated,
            client.throttle.superseded if client.throttle else 0,
        )

    async def _release(self, client: Client) -> int:
        """Stop the ticks of what ``client`` holds and let the pool go of it; how many."""
        held = len(client.subscriptions)
        for key in client.subscriptions:
            self.subscription_index.discard(client, *key)
        client.subscriptions.clear()
        if held and not self._closing:
            await self.pool.release(client)
        return held

    def stats(self) -> ClientApiStats:
        """Clients, what they hold, what was sent to them, and what the limits refused."""
        backoff = self.actions.backoff
        return ClientApiStats(
            url=self.url,
            clients=len(self.sessions),
            subscriptions=len(self.subscription_index),
            ticks_received=self._router.received if self._router else 0,
            ticks_malformed=self._router.malformed if self._router else 0,
            refused_connections=self.connection_limit.refused,
            failed_authentications=backoff.failures,
            delayed_authentications=backoff.delayed,
            malformed_messages=self.actions.malformed,
            server_errors=self.actions.server_errors,
            sessions=[ClientStats(**session.stats()) for session in self.sessions.values()],
        )

    async def close(self, grace: float = SHUTDOWN_CLOSE_TIMEOUT) -> None:
        """Stop listening, close every client with 1001 (cut after ``grace`` s), stop reading.

        The pool is not told to let go of what the clients held: it closes next, so the requests
        in flight are abandoned.
        """
        self._closing = True
        for client in self._leaving:
            client.abandon()
        if self._server is not None:
            self._server.close(close_connections=False)
            await asyncio.gather(
                *(
                    client.close(CloseCode.GOING_AWAY, "server shutting down", grace)
                    for client in list(self.sessions.values())
                )
            )
            await self._server.wait_closed()
        self._stop_routing()
        log.info("Client API closed")

    def _stop_routing(self) -> None:
        if self.pool.publisher.tick_listener is self._router:
            self.pool.publisher.tick_listener = None
