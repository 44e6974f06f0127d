"""The backend's parts, started and stopped together: simulator, bus, log handler, pool and proxy.

With ``BROKER=simulator`` the bundled exchange simulator runs in a child process
(:class:`SimulatorProcess`).

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
import gc
import logging
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import Connection
from typing import Any

import psutil

from backend.adapter import BrokerConnectionError
from backend.apikey import api_key
from backend.bus import HEALTH_TOPIC, BusBindError, SharedZmqPublisher
from backend.instruments import InstrumentMaster, MasterFormatError, load_master
from backend.log_bus import BusLogHandler
from backend.pool import ConnectionPool
from backend.proxy import WebSocketProxy
from backend.settings import Secret, Settings, SettingsError
from backend.simulator import ExchangeSimulator, SimulatorCredentials
from backend.smartstream.adapter import (
    SmartStreamAdapter,
    SmartStreamCredentials,
    open_connection,
)

log = logging.getLogger("feedpool.backend")

STATS_INTERVAL = 1.0
PARENT_POLL_SECONDS = 0.25
SIMULATOR_START_TIMEOUT = 30.0
SIMULATOR_STOP_TIMEOUT = 1.0
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


async def process_ended(pid: int) -> None:
    """Return once process ``pid`` has ended (or is left a zombie); polls, as no event tells."""
    try:
        process = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while _running(process):  # noqa: ASYNC110
        await asyncio.sleep(PARENT_POLL_SECONDS)


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class SimulatorProcess:
    """The bundled exchange simulator, serving in a child process.

    The simulator makes and sends every tick, about as much work per tick as the adapters do to
    receive it. In a process of its own it runs on the machine's other core, and the backend's
    event loop is left to the adapters and the clients: at the NSE opening peak (12,000 ticks/s)
    on two cores, that loop is 62-72% busy instead of 80-100%, which keeps the latency tail
    under 20 ms (see the README's benchmark).

    The child is started with ``spawn`` (a fork would copy the bus's threads and sockets). It
    accepts :class:`~backend.simulator.SimulatorCredentials`' defaults, ignores SIGINT (a Ctrl-C
    is the backend's to handle), ends when :meth:`stop` ends it, and ends on its own when the
    backend dies.
    """

    def __init__(self, ticks_per_second: float, seed: int | None, master: str | None) -> None:
        self.credentials = SimulatorCredentials()
        #: Where the simulator listens, once started.
        self.url = ""
        self._arguments = (ticks_per_second, seed, master, os.getpid())
        self._process: multiprocessing.process.BaseProcess | None = None

    async def start(self) -> None:
        """Start the child and wait until it listens; :class:`StartupError` if it cannot."""
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(
            target=run_simulator,
            args=(sender, *self._arguments),
            name="feedpool-simulator",
            daemon=True,
        )
        self._process.start()
        sender.close()
        try:
            loop = asyncio.get_running_loop()
            state, detail = await loop.run_in_executor(None, _first_word, receiver)
        finally:
            receiver.close()
        if state != "ready":
            raise StartupError("SIMULATOR_ERROR", detail)
        self.url = detail
        log.info("Exchange simulator serving on %s (process %d)", self.url, self._process.pid)

    async def stop(self) -> None:
        """End the child process."""
        process = self._process
        if process is None or not process.is_alive():
            return
        process.terminate()
        await asyncio.get_running_loop().run_in_executor(None, process.join, SIMULATOR_STOP_TIMEOUT)
        if process.is_alive():
            process.kill()


def _first_word(receiver: Connection) -> tuple[str, str]:
    """``("ready", url)`` or ``("error", why)``: what the child says first."""
    if not receiver.poll(SIMULATOR_START_TIMEOUT):
        return "error", f"the simulator did not start within {SIMULATOR_START_TIMEOUT:g} s"
    try:
        return receiver.recv()
    except EOFError:
        return "error", "the simulator process ended before it listened"


def run_simulator(
    sender: Connection,
    ticks_per_second: float,
    seed: int | None,
    master: str | None,
    parent_pid: int,
) -> None:
    """The simulator's child process: serve until ended, or until process ``parent_pid`` ends.

    Sends ``("ready", url)`` on ``sender`` once listening, or ``("error", why)``.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_serve_simulator(sender, ticks_per_second, seed, master, parent_pid))


async def _serve_simulator(
    sender: Connection,
    ticks_per_second: float,
    seed: int | None,
    master: str | None,
    parent_pid: int,
) -> None:
    try:
        simulator = ExchangeSimulator(
            load_master(master), ticks_per_second=ticks_per_second, seed=seed
        )
        await simulator.start()
    except (OSError, MasterFormatError) as exc:
        sender.send(("error", f"cannot start the simulator: {exc}"))
        return
    gc.freeze()  # the master lives as long as the process; see backend.__main__
    sender.send(("ready", simulator.url))
    sender.close()
    try:
        await process_ended(parent_pid)
    finally:
        await simulator.stop()


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
            await self.simulator.start()
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
