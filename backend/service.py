"""The backend's parts, started and stopped together: simulator, bus, log handler, pool and proxy.

With ``BROKER=simulator`` the bundled exchange simulator runs in a child process
(:class:`~backend.simulator.child.SimulatorProcess`).

Once started, the backend publishes on the bus:

- ``SYS.POOL``: the pool's statistics, on every change (by the pool) and every second;
- ``SYS.CLIENTS``: the client API's statistics (clients, what each holds, ticks sent and
  conflated), every second;
- ``SYS.LOG``: every log record of the process, through :class:`~backend.log_bus.BusLogHandler`;
- ``SYS.HEALTH``: the backend's state (``ready``, ``down``) and each connection's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from backend.adapter import BrokerConnectionError
from backend.apikey import api_key
from backend.bus import HEALTH_TOPIC, BusBindError, SharedZmqPublisher
from backend.instruments import InstrumentMaster, MasterFormatError, load_master
from backend.log_bus import BusLogHandler
from backend.pool import ConnectionPool
from backend.proxy import WebSocketProxy
from backend.settings import Secret, Settings, SettingsError
from backend.simulator import SimulatorCredentials
from backend.simulator.child import SimulatorProcess, SimulatorStartError
from backend.smartstream.adapter import (
    SmartStreamAdapter,
    SmartStreamCredentials,
    open_connection,
)

log = logging.getLogger("feedpool.backend")

STATS_INTERVAL = 1.0
CLIENTS_TOPIC = "SYS.CLIENTS"
INVALID_SETTING = "INVALID_SETTING"
_ANGEL_CREDENTIALS = ("ANGEL_CLIENT_CODE", "ANGEL_API_KEY", "ANGEL_FEED_TOKEN", "ANGEL_AUTH_TOKEN")


class StartupError(Exception):
    """The backend cannot start; ``code`` names the cause in the error line."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def angel_credentials(settings: Settings) -> SmartStreamCredentials:
    """The Angel One credentials from the settings; :class:`SettingsError` if any is missing."""
    for name in _ANGEL_CREDENTIALS:
        if not getattr(settings, name):
            raise SettingsError(name, "", "required when BROKER=angel")
    return SmartStreamCredentials(
        settings.ANGEL_CLIENT_CODE,
        settings.ANGEL_API_KEY,
        settings.ANGEL_FEED_TOKEN,
        settings.ANGEL_AUTH_TOKEN,
    )


def simulator_credentials(credentials: SimulatorCredentials) -> SmartStreamCredentials:
    """What an adapter presents to the bundled simulator."""
    return SmartStreamCredentials(
        credentials.client_code,
        Secret(credentials.api_key),
        Secret(credentials.feed_token),
        Secret(credentials.auth_token),
    )


async def check_broker(url: str, credentials: SmartStreamCredentials) -> None:
    """Open one connection to the broker and close it again.

    :class:`BrokerConnectionError` if the broker cannot be reached or refuses the connection, so
    a backend that could never stream says so at start rather than at the first subscription.
    """
    connection = await open_connection(url, credentials, "a test connection")
    await connection.close()


class Backend:
    """The simulator (when ``BROKER=simulator``), the bus, the pool and the client API."""

    def __init__(self, settings: Settings, master: InstrumentMaster | None = None) -> None:
        self.settings = settings
        self._master = master
        self.simulator: SimulatorProcess | None = None
        self.publisher: SharedZmqPublisher | None = None
        self.pool: ConnectionPool | None = None
        self.proxy: WebSocketProxy | None = None
        self._log_handler: BusLogHandler | None = None
        self._stats_task: asyncio.Task[None] | None = None

    @property
    def master(self) -> InstrumentMaster:
        """The instrument master, loaded on first use."""
        if self._master is None:
            self._master = load_master(self.settings.INSTRUMENT_MASTER or None)
        return self._master

    async def start(self) -> None:
        """Start every part; :class:`StartupError` says what failed (call :meth:`stop` then)."""
        settings = self.settings
        try:
            master = self.master
        except (OSError, MasterFormatError) as exc:
            raise StartupError("INSTRUMENT_MASTER_ERROR", str(exc)) from None
        try:
            self.publisher = SharedZmqPublisher.get(settings.ZMQ_HOST, settings.ZMQ_PORT)
        except BusBindError as exc:
            raise StartupError("BUS_PORT_UNAVAILABLE", str(exc)) from None
        self._log_handler = BusLogHandler(self.publisher)
        logging.getLogger().addHandler(self._log_handler)
        url, credentials = await self._broker()
        user_id = settings.BROKER_USER_ID or credentials.client_code

        def adapter(index: int) -> SmartStreamAdapter:
            return SmartStreamAdapter(index, url, credentials)

        self.pool = ConnectionPool(
            settings.BROKER,
            user_id,
            master,
            adapter,
            self.publisher,
            max_symbols_per_connection=settings.MAX_SYMBOLS_PER_WEBSOCKET,
            max_connections=settings.MAX_WEBSOCKET_CONNECTIONS,
        )
        self.proxy = WebSocketProxy(
            self.pool,
            api_key(settings),
            host=settings.WEBSOCKET_HOST,
            port=settings.WEBSOCKET_PORT,
            min_interval_ms=settings.WS_MIN_INTERVAL_MS,
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

    async def _broker(self) -> tuple[str, SmartStreamCredentials]:
        """The broker's URL and credentials, starting the simulator or checking the broker."""
        settings = self.settings
        if settings.BROKER == "simulator":
            seed = int(settings.SIMULATOR_SEED) if settings.SIMULATOR_SEED.isdigit() else None
            self.simulator = SimulatorProcess(
                settings.SIMULATOR_TICKS_PER_SECOND, seed, settings.INSTRUMENT_MASTER or None
            )
            try:
                await self.simulator.start()
            except SimulatorStartError as exc:
                raise StartupError("SIMULATOR_ERROR", str(exc)) from None
            return self.simulator.url, simulator_credentials(self.simulator.credentials)
        try:
            credentials = angel_credentials(settings)
        except SettingsError as exc:
            raise StartupError(INVALID_SETTING, str(exc)) from None
        try:
            await check_broker(settings.ANGEL_WS_URL, credentials)
        except BrokerConnectionError as exc:
            raise StartupError(exc.code, str(exc)) from None
        return settings.ANGEL_WS_URL, credentials

    def _health(self, state: str, reason: str = "") -> None:
        health: dict[str, Any] = {
            "component": "backend",
            "state": state,
            "reason": reason,
            "time": time.time(),
        }
        if self.proxy is not None:
            health["ws"] = self.proxy.url
        if self.publisher is not None:
            health["zmq"] = self.publisher.endpoint
            self.publisher.publish(HEALTH_TOPIC, health)

    async def _publish_stats(self) -> None:
        while True:
            await asyncio.sleep(STATS_INTERVAL)
            self.pool.publish_stats()
            self.publisher.publish(CLIENTS_TOPIC, self.proxy.stats())

    async def stop(self) -> None:
        """Close the clients (1001), the broker connections, the simulator and the bus."""
        if self._stats_task is not None:
            self._stats_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stats_task
        if self.proxy is not None:
            await self.proxy.close()
        if self.pool is not None:
            await self.pool.close()
        if self.simulator is not None:
            await self.simulator.stop()
        self._health("down", "stopped")
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
        if self.publisher is not None:
            self.publisher.close()
