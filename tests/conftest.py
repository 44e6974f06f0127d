"""Shared fixtures: the bundled master, a real simulator, a bus publisher, pools, bus readers and
an in-process keychain."""

from __future__ import annotations

import asyncio
import gc
import json
import os
from collections.abc import Callable
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
import zmq
import zmq.asyncio
from backend_process import BackendProcess
from keyring.backend import KeyringBackend
from proxy_client import start_proxy

from backend.brokers import BROKERS
from backend.bus.publisher import ZmqPublisher
from backend.instruments.master import InstrumentMaster, load_master
from backend.pool.connection_pool import ConnectionPool
from backend.simulator import ExchangeSimulator, SimulatorCredentials

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The processes the tests start (backends, simulators) import this checkout's packages, wherever
# they run and wherever the environment's editable install points.
ROOT = str(Path(__file__).resolve().parent.parent)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (ROOT, os.environ.get("PYTHONPATH"))))


@pytest.fixture(autouse=True)
def _user_dirs(tmp_path_factory, monkeypatch):
    """Settings, API keys and watchlists of a test go to a fresh folder, never the user's, and
    no test reads or writes the user's keychain: keyring has no backend, as on a headless host."""
    home = tmp_path_factory.mktemp("home")
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, str(home / name.lower()))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    keyring.set_keyring(keyring.backends.fail.Keyring())


class MemoryKeyring(KeyringBackend):
    """A keychain that keeps its passwords in this process, through keyring's backend API."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[service, username] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.passwords[service, username]


@pytest.fixture
def memory_keyring() -> MemoryKeyring:
    """An OS keychain for the test, in this process."""
    store = MemoryKeyring()
    keyring.set_keyring(store)
    return store


@pytest.fixture(scope="session")
def master():
    return load_master()


@pytest.fixture
def symbols(master) -> Callable[[int], list[tuple[str, str]]]:
    """The first ``n`` instruments of the bundled master as ``(symbol, exchange)``."""
    everything = [(i.symbol, i.exchange) for i in master]
    return lambda n, start=0: everything[start : start + n]


@pytest.fixture
async def make_simulator(master):
    started: list[ExchangeSimulator] = []

    async def make(ticks_per_second: float = 1.0, **options) -> ExchangeSimulator:
        options.setdefault("max_tokens", 1000)
        simulator = ExchangeSimulator(master, ticks_per_second=ticks_per_second, seed=7, **options)
        await simulator.start()
        started.append(simulator)
        return simulator

    yield make
    for simulator in started:
        await simulator.stop()


@pytest.fixture
def publisher():
    pub = ZmqPublisher(port=0)
    yield pub
    pub.close()


@pytest.fixture
async def make_pool(master, publisher):
    pools: list[ConnectionPool] = []

    def make(
        simulator: ExchangeSimulator | None,
        max_symbols: int = 1000,
        max_connections: int = 3,
        url: str | Callable[[int], str] | None = None,
    ) -> ConnectionPool:
        """A pool on ``simulator``; ``url`` (or ``url(connection index)``) instead of its URL."""
        broker = simulator.broker if simulator else BROKERS["angel"]
        credentials = broker.simulator_credentials(
            simulator.credentials if simulator else SimulatorCredentials()
        )
        target = url or simulator.url
        url_of = target if callable(target) else lambda _: target
        pool_master = InstrumentMaster(simulator.instruments.values()) if simulator else master

        def adapter(index: int):
            return broker.adapter(
                index,
                url_of(index),
                credentials,
                reconnect_first_delay=0.05,
                reconnect_max_delay=0.5,
            )

        pool = ConnectionPool(
            "simulator",
            "TEST",
            pool_master,
            adapter,
            publisher,
            max_symbols_per_connection=max_symbols,
            max_connections=max_connections,
        )
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await pool.close()


@pytest.fixture
async def serve(make_simulator, make_pool):
    """Start a simulator at ``ticks_per_second``, a pool on it and a proxy for the pool.

    Like the backend process once it is ready, the test process then freezes what it holds, so
    a full garbage collection of earlier tests' objects cannot stall the ticks being measured.
    """
    started = []

    async def make(ticks_per_second: float, **options):
        simulator = await make_simulator(ticks_per_second=ticks_per_second)
        proxy = await start_proxy(make_pool(simulator), **options)
        started.append(proxy)
        gc.collect()
        gc.freeze()
        return proxy

    yield make
    gc.unfreeze()
    for proxy in started:
        await proxy.close()


class BusReader:
    """A SUB socket on the bus, read until a condition holds."""

    def __init__(self, endpoint: str, *prefixes: str) -> None:
        self.socket = zmq.asyncio.Context.instance().socket(zmq.SUB)
        self.socket.setsockopt(zmq.RCVHWM, 0)
        self.socket.setsockopt(zmq.LINGER, 0)
        for prefix in prefixes or ("",):
            self.socket.setsockopt_string(zmq.SUBSCRIBE, prefix)
        self.socket.connect(endpoint)

    async def until(self, done: Callable[[str, dict], bool], timeout: float = 20.0) -> None:
        """Read messages until ``done(topic, payload)`` is true for one of them."""

        async with asyncio.timeout(timeout):
            while True:
                topic, payload = await self.socket.recv_multipart()
                if done(topic.decode(), json.loads(payload)):
                    return

    async def joined(self, timeout: float = 20.0) -> None:
        """Wait for the first message: a SUB socket joins the bus asynchronously."""
        await self.until(lambda topic, payload: True, timeout)

    async def ticks_after(
        self, since_ms: int, topics: set[str], timeout: float = 20.0
    ) -> dict[str, dict]:
        """The first tick on each of ``topics`` stamped after ``since_ms``."""
        seen: dict[str, dict] = {}

        def collect(topic: str, tick: dict) -> bool:
            if topic in topics and tick.get("timestamp", 0) > since_ms:
                seen.setdefault(topic, tick)
            return len(seen) == len(topics)

        await self.until(collect, timeout)
        return seen

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def bus(publisher):
    readers: list[BusReader] = []

    def make(*prefixes: str) -> BusReader:
        reader = BusReader(publisher.endpoint, *prefixes)
        readers.append(reader)
        return reader

    yield make
    for reader in readers:
        reader.close()


@pytest.fixture
async def backends(tmp_path):
    started: list[BackendProcess] = []

    async def start(*args: str, **env: str) -> tuple[BackendProcess, dict]:
        backend, line = await BackendProcess.start(tmp_path, *args, **env)
        started.append(backend)
        return backend, line

    yield start
    for backend in started:
        backend.kill()
        await backend.process.wait()
