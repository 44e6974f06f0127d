"""``python -m backend`` as the desktop app runs it: ready line, bus, shutdown and errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import sys
import time

import httpx
import psutil
import pytest
from backend_process import BackendProcess, free_port
from proxy_client import BusMonitor, Client, eventually
from simulator_process import StandaloneSimulator

from backend.feed import TICK_FIELDS
from backend.runtime.settings import log_dir
from backend.simulator import SimulatorCredentials


async def test_ready_line_then_clients_and_the_monitoring_bus(backends):
    backend, ready = await backends()
    assert ready == {
        "event": "ready",
        "ws": ready["ws"],
        "zmq": ready["zmq"],
        "tls_fingerprint": None,
        "bus_public_key": None,
        "pid": backend.process.pid,
        "broker": "simulator",
    }
    assert ready["ws"].startswith("ws://127.0.0.1:") and ready["zmq"].startswith("tcp://127.0.0.1:")

    seen: dict[str, dict] = {}

    def monitored(topic: str, payload: dict) -> bool:
        if topic == "SYS.LOG" and payload["message"].startswith("[POOL] Connection 1 started"):
            seen["log"] = payload
        elif topic == "SYS.HEALTH" and payload.get("connection") == 1:
            seen["health"] = payload
        elif topic == "SYS.POOL" and payload["total_symbols"] == 2:
            seen["pool"] = payload
        elif topic == "SYS.CLIENTS" and payload["clients"] == 1:
            seen["clients"] = payload
        return len(seen) == 4

    bus = BusMonitor(ready["zmq"])
    try:
        await bus.until(lambda topic, _: topic == "SYS.POOL")  # the monitor has joined the bus
        client = await Client.open(ready["ws"])
        reply = await client.subscribe([("SBIN", "NSE"), ("INFY", "NSE")], mode=1)
        assert reply["status"] == "success"
        await bus.until(monitored)
    finally:
        bus.close()
    assert seen["log"] == {
        "time": seen["log"]["time"],
        "level": "INFO",
        "logger": "feedpool.pool",
        "connection": 1,
        "sequence": seen["log"]["sequence"],
        "message": "[POOL] Connection 1 started",
    }
    assert isinstance(seen["log"]["sequence"], int) and seen["log"]["sequence"] > 1
    assert abs(seen["log"]["time"] - time.time()) < 30
    assert seen["health"]["state"] == "connected"
    assert seen["pool"]["connections"][0]["state"] == "connected"
    assert seen["clients"]["sessions"][0]["subscriptions"] == 2
    await client.tick(mode=1)
    await client.close()
    assert (log_dir() / "backend.log").read_text().count("[POOL] Connection 1 started") == 1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_closes_clients_with_1001_and_exits_0_within_2_s(backends, signum):
    backend, ready = await backends()
    client = await Client.open(ready["ws"])
    assert (await client.subscribe([("SBIN", "NSE")]))["status"] == "success"
    await client.tick()
    signalled = time.monotonic()
    backend.process.send_signal(signum)
    assert await client.closed() == (1001, "server shutting down")
    assert await backend.exited() == 0
    assert time.monotonic() - signalled < 2.0
    assert "Closed pool" in backend.stderr.read_text()


async def test_a_signal_during_start_up_ends_it_without_a_ready_line(tmp_path):
    """SIGTERM while the backend waits for its instrument master: start-up ends, and no ready
    line comes even when the master does; exit 0."""
    simulator = await StandaloneSimulator.start(tmp_path)
    async with httpx.AsyncClient() as http:
        master = (await http.get(simulator.ready["master"])).content
    asked, answer = asyncio.Event(), asyncio.Event()

    async def serve_master(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        asked.set()
        await answer.wait()
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(master)}\r\nConnection: close\r\n\r\n"
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode() + master)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve_master, "127.0.0.1", 0)
    account = SimulatorCredentials()
    backend = await BackendProcess.spawn(
        tmp_path,
        BROKER="angel",
        ANGEL_WS_URL=simulator.ready["url"],
        ANGEL_CLIENT_CODE=account.client_code,
        ANGEL_API_KEY=account.api_key,
        ANGEL_FEED_TOKEN=account.feed_token,
        ANGEL_AUTH_TOKEN=account.auth_token,
        INSTRUMENT_MASTER=f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/master.json",
    )
    try:
        await asyncio.wait_for(asked.wait(), 30)
        backend.process.send_signal(signal.SIGTERM)
        await eventually(lambda: "Stopping during start-up" in backend.stderr.read_text())
        answer.set()  # the start-up, had it gone on, would be ready now
        assert await backend.exited() == 0
        assert await backend.process.stdout.read() == b""
    finally:
        backend.kill()
        server.close()
        await simulator.stop()


async def test_exits_when_its_parent_process_ends(backends):
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(60)"
    )
    try:
        backend, ready = await backends("--parent-pid", str(parent.pid))
        assert ready["event"] == "ready"
    finally:
        parent.kill()
        await parent.wait()
    assert await backend.exited(within=5) == 0
    assert "Parent process" in backend.stderr.read_text()


async def test_the_simulator_process_does_not_outlive_a_killed_backend(backends):
    backend, _ = await backends()
    children = psutil.Process(backend.process.pid).children(recursive=True)
    assert children  # the simulator and multiprocessing's resource tracker
    backend.process.kill()
    await backend.exited()
    _, alive = await asyncio.to_thread(psutil.wait_procs, children, 5)
    assert not alive


async def test_a_parent_already_gone_stops_it_at_once(backends):
    parent = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await parent.wait()
    backend, _ = await backends("--parent-pid", str(parent.pid))
    assert await backend.exited(within=5) == 0


async def test_a_taken_websocket_port_is_an_error_line(backends):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        backend, line = await backends(WEBSOCKET_PORT=str(port))
        assert await backend.exited() == 1
    assert line["event"] == "error" and line["code"] == "WS_PORT_UNAVAILABLE"
    assert f"127.0.0.1:{port}" in line["message"]


async def test_a_bad_setting_is_an_error_line(backends):
    backend, line = await backends(WS_MIN_INTERVAL_MS="-5")
    assert await backend.exited() == 2
    assert line == {
        "event": "error",
        "code": "INVALID_SETTING",
        "message": "invalid setting WS_MIN_INTERVAL_MS='-5': "
        "expected a whole number from 0 to 60000",
    }


async def test_an_unreachable_broker_is_an_error_line_without_credentials(backends):
    url = f"ws://127.0.0.1:{free_port()}/smart-stream"
    backend, line = await backends(
        BROKER="angel",
        ANGEL_WS_URL=url,
        ANGEL_CLIENT_CODE="A123",
        ANGEL_API_KEY="secret-api-key",
        ANGEL_FEED_TOKEN="secret-feed-token",
        ANGEL_AUTH_TOKEN="secret-auth-token",
    )
    assert await backend.exited() == 1
    assert line["event"] == "error" and line["code"] == "BROKER_CONNECTION_ERROR"
    assert line["message"].startswith(f"cannot reach the broker at {url}")
    everything = json.dumps(line) + backend.stderr.read_text()
    assert "secret" not in everything


@pytest.mark.parametrize(
    ("broker", "capacity"), [("angel", 1000), ("zerodha", 3000), ("dhan", 5000)]
)
async def test_the_same_client_gets_the_same_ticks_from_either_broker(backends, broker, capacity):
    _, ready = await backends(SIMULATOR_BROKER=broker)
    client = await Client.open(ready["ws"])
    try:
        wanted = {1: ("INFY", "NSE"), 2: ("NIFTY", "NSE_INDEX"), 3: ("NIFTY29DEC2626000CE", "NFO")}
        for mode, symbol in wanted.items():
            reply = await client.subscribe([symbol], mode=mode)
            assert reply["status"] == "success", reply
        for mode, (symbol, exchange) in wanted.items():
            tick = await client.tick(mode=mode, symbol=symbol, exchange=exchange)
            assert set(tick["data"]) == set(TICK_FIELDS[mode]), (broker, mode)
            assert tick["data"]["ltp"] > 0 and tick["data"]["timestamp"] > 0
        depth = (await client.tick(mode=3))["data"]["depth"]
        assert [len(depth["buy"]), len(depth["sell"])] == [5, 5]
        assert depth["buy"][0]["price"] < depth["sell"][0]["price"]
        info = await client.request({"action": "get_broker_info"})
        assert info["status"] == "success"
        stats: dict = {}

        def pool(topic: str, payload: dict) -> bool:
            stats.update(payload)
            return topic == "SYS.POOL" and payload["total_symbols"] == 3

        bus = BusMonitor(ready["zmq"])
        try:
            await bus.until(pool)
        finally:
            bus.close()
    finally:
        await client.close()
    assert stats["max_symbols_per_connection"] == capacity
    assert stats["connections"][0]["capacity"] == capacity


async def test_limits_above_the_brokers_warn_at_start_naming_the_limit(backends):
    backend, ready = await backends(MAX_SYMBOLS_PER_WEBSOCKET="5000")
    assert ready["event"] == "ready"
    log = backend.stderr.read_text()
    assert "MAX_SYMBOLS_PER_WEBSOCKET=5000 is more than Angel One allows (1000)" in log
