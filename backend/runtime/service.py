"""The backend's parts, started and stopped together: simulator, bus, log handler, pool and proxy.

Each broker account (:mod:`backend.runtime.accounts`) has its own pool, session and instrument
master; :class:`~backend.pool.accounts.PooledAccounts` makes them one. With ``BROKER=simulator``
the bundled exchange simulator plays each account in a child process of its own
(:class:`~backend.simulator.child.SimulatorProcess`), started together.

Once started, the backend publishes on the bus (the types are in :mod:`backend.bus.messages`):

- ``SYS.POOL``: the pool's statistics, on every change (by the pool) and every second;
- ``SYS.CLIENTS``: the client API's statistics (clients, what each holds, ticks sent and
  conflated) and the process's count of asyncio tasks (``tasks``), every second;
- ``SYS.LOG``: every log record of the process, through
  :class:`~backend.logs.bus_handler.BusLogHandler`;
- ``SYS.HEALTH``: the backend's state (``ready``, ``down``) and where it serves, and each
  connection's state;
- ``SYS.MOVES``: with several accounts, each batch of symbols moved between them.

Before it binds anything, the backend refuses to serve other machines in the clear
(``INSECURE_REMOTE``, see :mod:`backend.security.exposure`) and loads its API key, TLS certificate
and bus keys, generating them on first use (``CONFIG_DIR_ERROR`` when they cannot be kept).

:func:`startup_error` turns whatever stopped a start-up into the error line's code and message:
a known cause as it is, anything else with its type and message, never a secret's value.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import zmq

from backend.brokers.errors import BrokerConnectionError
from backend.brokers.session import BrokerSession, LoginError
from backend.bus.guard import BusGuard
from backend.bus.keys import KeyPair, allowed_clients_dir, server_keys
from backend.bus.messages import BackendHealth, ClientsStats
from backend.bus.publisher import BusBindError, SharedZmqPublisher
from backend.feed import CLIENTS_TOPIC, HEALTH_TOPIC
from backend.instruments.master import InstrumentMaster, MasterFormatError
from backend.instruments.sources import broker_master, served_master
from backend.logs.bus_handler import BusLogHandler
from backend.pool.accounts import PooledAccounts
from backend.pool.connection_pool import ConnectionPool
from backend.pool.ledger import Account
from backend.proxy import WebSocketProxy
from backend.runtime.accounts import AccountSettings
from backend.runtime.settings import CURVE_ON, SIMULATOR, Settings, SettingsError
from backend.security.api_key import api_key
from backend.security.certificate import ServerCertificate, server_certificate
from backend.security.exposure import INSECURE_REMOTE, insecure_exposures, local_url
from backend.security.private_files import PrivateFileError
from backend.security.secret import Secret
from backend.simulator.child import SimulatorProcess, SimulatorStartError
from backend.simulator.credentials import SimulatorCredentials

log = logging.getLogger("feedpool.backend")

STATS_INTERVAL = 1.0
INVALID_SETTING = "INVALID_SETTING"
MASTER_ERROR = "INSTRUMENT_MASTER_ERROR"
LOGIN_ERROR = "BROKER_LOGIN_ERROR"
#: The API key, TLS certificate or bus keys cannot be kept in the user config dir.
CONFIG_DIR_ERROR = "CONFIG_DIR_ERROR"
#: A start-up failure nothing foresaw.
UNEXPECTED_ERROR = "UNEXPECTED_ERROR"
#: The codes of a start refused for its settings (the others: for what it met).
SETTING_ERRORS = frozenset({INVALID_SETTING, INSECURE_REMOTE})


class StartupError(Exception):
    """The backend cannot start; ``code`` names the cause in the error line."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def startup_error(exc: Exception, settings: Settings | None = None) -> StartupError:
    """What the error line says of ``exc``, which stopped a start-up: a :class:`StartupError`
    as it is, a bad setting as ``INVALID_SETTING``, a file the config dir cannot keep as
    ``CONFIG_DIR_ERROR``; anything else as ``UNEXPECTED_ERROR`` with its type, where it was
    raised and its message, each of ``settings``' secrets masked in it."""
    if isinstance(exc, StartupError):
        return exc
    if isinstance(exc, SettingsError):
        return StartupError(INVALID_SETTING, str(exc))
    if isinstance(exc, PrivateFileError):
        return StartupError(CONFIG_DIR_ERROR, str(exc))
    message = str(exc)
    for value in settings.values().values() if settings else ():
        if isinstance(value, Secret) and value:
            message = message.replace(value.reveal(), "***")
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" in {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return StartupError(UNEXPECTED_ERROR, f"unexpected {type(exc).__name__}{where}: {message}")


class Backend:
    """The simulators (when ``BROKER=simulator``), the bus, the accounts' pools and the client
    API.

    ``master`` replaces the instrument master the brokers (or the simulators) publish.
    """

    def __init__(self, settings: Settings, master: InstrumentMaster | None = None) -> None:
        self.settings = settings
        self.master = master
        #: The simulator of each simulated account, in the accounts' order.
        self.simulators: list[SimulatorProcess] = []
        self.publisher: SharedZmqPublisher | None = None
        self.pool: PooledAccounts | None = None
        self.proxy: WebSocketProxy | None = None
        self.api_key: Secret | None = None
        self.certificate: ServerCertificate | None = None
        self.bus_keys: KeyPair | None = None
        self.bus_guard: BusGuard | None = None
        self._log_handler: BusLogHandler | None = None
        self._stats_task: asyncio.Task[None] | None = None
        self._guard_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start every part; :class:`StartupError` says what failed (call :meth:`stop` then)."""
        settings = self.settings
        self._secure()
        try:
            self.publisher = SharedZmqPublisher.get(
                settings.ZMQ_HOST, settings.ZMQ_PORT, self.bus_keys
            )
        except BusBindError as exc:
            raise StartupError("BUS_PORT_UNAVAILABLE", str(exc)) from None
        if self.bus_guard is not None:
            watch = self.bus_guard.watch(self.publisher.reconnect_subscribers)
            self._guard_task = asyncio.get_running_loop().create_task(watch)
        self._log_handler = BusLogHandler(self.publisher)
        logging.getLogger().addHandler(self._log_handler)
        self._announce_security()
        for warning in settings.over_broker_limits():
            log.warning("[POOL] %s", warning)
        try:
            accounts = settings.accounts
            if settings.BROKER != SIMULATOR:
                settings.check_credentials()
        except SettingsError as exc:
            raise StartupError(INVALID_SETTING, str(exc)) from None
        first = 1
        starts = []
        for number, account in enumerate(accounts):
            starts.append(self._account(account, number, first, several=len(accounts) > 1))
            first += account.connections
        started = await asyncio.gather(*starts)
        self.master = started[0].pool.master
        self.pool = PooledAccounts(
            started, self.publisher, failover_seconds=settings.FAILOVER_SECONDS
        )
        self.proxy = WebSocketProxy(
            self.pool,
            self.api_key,
            host=settings.WEBSOCKET_HOST,
            port=settings.WEBSOCKET_PORT,
            min_interval_ms=settings.WS_MIN_INTERVAL_MS,
            max_clients_per_address=settings.MAX_CLIENTS_PER_ADDRESS,
            auth_failures_before_delay=settings.AUTH_FAILURES_BEFORE_DELAY,
            ssl_context=self.certificate.context() if self.certificate else None,
        )
        try:
            await self.proxy.start()
        except OSError as exc:
            self.proxy = None
            raise StartupError(
                "WS_PORT_UNAVAILABLE",
                f"cannot listen for clients on {settings.WEBSOCKET_HOST}:"
                f"{settings.WEBSOCKET_PORT}: {exc.strerror or exc}",
            ) from None
        self._stats_task = asyncio.get_running_loop().create_task(self._publish_stats())
        self._health("ready")

    def _secure(self) -> None:
        """Refuse an insecure exposure; load (or make) the API key, TLS certificate and bus
        keys, and start letting in the bus's allowed subscribers."""
        settings = self.settings
        exposed = insecure_exposures(settings)
        if exposed and not settings.ALLOW_INSECURE_REMOTE:
            raise StartupError(
                INSECURE_REMOTE,
                "; ".join(
                    f"{what}: {remedy}, or ALLOW_INSECURE_REMOTE=1 if you mean it"
                    for what, remedy in exposed
                ),
            )
        try:
            self.api_key = api_key(settings)
            self.certificate = server_certificate(settings)
            if settings.BUS_CURVE == CURVE_ON:
                self.bus_keys = server_keys()
        except (SettingsError, PrivateFileError) as exc:
            raise startup_error(exc) from None
        if self.bus_keys is not None:
            self.bus_guard = BusGuard(zmq.Context.instance(), allowed_clients_dir())
            self.bus_guard.start()

    def _announce_security(self) -> None:
        for what, _ in insecure_exposures(self.settings):
            log.warning("%s (ALLOW_INSECURE_REMOTE=1)", what)
        if self.certificate is not None:
            log.info(
                "Client API over TLS with %s, SHA-256 fingerprint %s",
                self.certificate.cert_file,
                self.certificate.fingerprint,
            )
        if self.bus_guard is not None:
            log.info(
                "Bus encrypted with CURVE, server public key %s; %d client keys allowed in %s",
                self.bus_keys.public.decode(),
                self.bus_guard.allowed,
                self.bus_guard.directory,
            )

    def endpoints(self) -> dict[str, str | None]:
        """Where clients on this machine connect, and what they trust: ``ws`` and ``zmq`` (None
        until listening), ``tls_fingerprint`` and ``bus_public_key`` (None when off); the fields
        of :class:`~backend.bus.messages.Ready` and :class:`~backend.bus.messages.BackendHealth`
        of the same names."""
        publisher = self.publisher
        return {
            "ws": self.proxy.url if self.proxy is not None else None,
            "zmq": local_url("tcp", self.settings.ZMQ_HOST, publisher.port) if publisher else None,
            "tls_fingerprint": self.certificate.fingerprint if self.certificate else None,
            "bus_public_key": self.bus_keys.public.decode() if self.bus_keys else None,
        }

    @property
    def simulator(self) -> SimulatorProcess | None:
        """The (first account's) simulator, if simulated."""
        return self.simulators[0] if self.simulators else None

    async def _account(
        self, account: AccountSettings, number: int, first: int, *, several: bool
    ) -> Account:
        """``account``'s pool, its connections numbered from ``first``, once its broker (or
        simulator) is reached and its master loaded; ``several``: one of several accounts."""
        settings = self.settings
        broker = account.broker
        url, session, master, values = await self._broker(account, number)

        def adapter(index: int):
            return broker.adapter(
                index, url, session, stale_feed_seconds=settings.STALE_FEED_SECONDS
            )

        pool = ConnectionPool(
            broker.name if several else settings.BROKER,
            account.user_id or broker.user_id(session),
            master,
            adapter,
            self.publisher,
            max_symbols_per_connection=account.max_symbols_per_connection,
            max_connections=account.connections,
            session=session,
            account=account.name if several else "",
            first_connection=first,
        )
        return Account(account.name, broker.name, pool, values)

    async def _broker(
        self, account: AccountSettings, number: int
    ) -> tuple[str, BrokerSession, InstrumentMaster, Mapping[str, Any]]:
        """The account's URL, session, master and settings: its simulator's, or the real
        broker's."""
        settings = self.settings
        broker = account.broker
        if settings.BROKER == SIMULATOR:
            seed = settings.SIMULATOR_SEED
            seed = int(seed) + number if seed.isdigit() else None
            simulator = SimulatorProcess(
                broker.name,
                settings.SIMULATOR_TICKS_PER_SECOND,
                seed,
                account.master or None,
                SimulatorCredentials(client_code=simulated_client_code(number)),
            )
            self.simulators.append(simulator)
            try:
                await simulator.start()
            except SimulatorStartError as exc:
                raise StartupError("SIMULATOR_ERROR", str(exc)) from None
            values = {
                **account.values,
                **broker.simulator_settings(simulator.credentials, simulator.rest),
            }
            values = settings.replace(**values).broker_values
            session = await self._session(broker.session(values))
            master = self.master or await self._master(served_master(broker, simulator.master))
            return simulator.url, session, master, values
        url = account.values[broker.url_setting]
        session = await self._session(broker.session(account.values))
        if session.credentials is not None:
            try:
                await broker.check(url, session.credentials)
            except BrokerConnectionError as exc:
                raise StartupError(exc.code, str(exc)) from None
        master = self.master or await self._master(broker_master(broker, account.master))
        return url, session, master, account.values

    @staticmethod
    async def _session(session: BrokerSession) -> BrokerSession:
        """``session`` begun. When the first login fails and the session can log in by itself,
        the backend starts anyway: the session tries again in the background (the pool's
        connections wait for it meanwhile) or, if the broker refused the settings, says what to
        fix and logs in no more. Otherwise the backend cannot start."""
        try:
            await session.begin()
        except LoginError as exc:
            if not session.can_renew:
                raise StartupError(LOGIN_ERROR, str(exc)) from None
            session.keep_trying(exc)
        return session

    @staticmethod
    async def _master(loading) -> InstrumentMaster:
        try:
            return await loading
        except MasterFormatError as exc:
            raise StartupError(MASTER_ERROR, str(exc)) from None

    def _health(self, state: str, reason: str = "") -> None:
        if self.publisher is not None:
            health = BackendHealth(state=state, reason=reason, time=time.time(), **self.endpoints())
            self.publisher.publish(HEALTH_TOPIC, health)

    async def _publish_stats(self) -> None:
        while True:
            await asyncio.sleep(STATS_INTERVAL)
            self.pool.publish_stats()
            stats = msgspec.structs.asdict(self.proxy.stats())
            tasks = len(asyncio.all_tasks())
            self.publisher.publish(CLIENTS_TOPIC, ClientsStats(**stats, tasks=tasks))

    async def stop(self) -> None:
        """Close the clients (1001), the broker connections, the simulator and the bus."""
        for task in (self._stats_task, self._guard_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.proxy is not None:
            await self.proxy.close()
        if self.pool is not None:
            await self.pool.close()
        await asyncio.gather(*(simulator.stop() for simulator in self.simulators))
        self._health("down", "stopped")
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
        if self.publisher is not None:
            self.publisher.close()
        if self.bus_guard is not None:
            self.bus_guard.stop()


def simulated_client_code(number: int) -> str:
    """The client code of the simulator playing account ``number`` (from 0): ``FEEDPOOL`` for the
    first, as with one account, then ``FEEDPOOL2``, ``FEEDPOOL3`` ..."""
    return SimulatorCredentials().client_code + (str(number + 1) if number else "")
