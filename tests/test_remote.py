"""One backend for many machines: the client API over TLS, the bus over CURVE with an allow-list,
and the refusal to serve other machines in the clear. Real backend processes, on 127.0.0.1.

Most tests share one secured backend (``WEBSOCKET_TLS=auto``, ``BUS_CURVE=on``) in a home of its
own; a subscriber allowed before it starts watches its bus from the first message.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
import zmq
import zmq.auth
from backend_process import BackendProcess, allow_bus_client, free_port
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from proxy_client import API_KEY, BusMonitor, Client
from websockets.exceptions import InvalidMessage
from zmq.utils.monitor import recv_monitor_message

from backend.bus.keys import allow_client, allowed_clients_dir
from backend.security.exposure import is_loopback, local_url
from backend.security.tls import FingerprintMismatch, fingerprint

SHARED = pytest.mark.asyncio(loop_scope="module")
#: How long a refused subscriber is watched for a message that must not come.
REFUSED_WAIT = 2.0
#: How soon a revoked subscriber's connection is closed, at most: the backend looks at the
#: allowed keys every second, and publishes (which finishes closing it) every second.
REVOKED_WITHIN = 5.0
POSIX = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


@dataclass
class Secured:
    home: Path
    backend: BackendProcess
    ready: dict
    #: The environment that puts a process's user dirs where the backend's are.
    dirs: dict[str, str]
    #: The first line of ``--allow-bus-client desk``, run before the backend started.
    desk: dict
    #: ``desk``'s subscriber, on ``SYS.`` since before the backend bound the bus.
    desk_bus: BusMonitor

    @property
    def config(self) -> Path:
        return Path(self.dirs["XDG_CONFIG_HOME"]) / "FeedPool"

    @property
    def log_file(self) -> Path:
        return Path(self.dirs["XDG_STATE_HOME"]) / "FeedPool" / "log" / "backend.log"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def secured(tmp_path_factory):
    home = tmp_path_factory.mktemp("secured")
    dirs = {name: str(home / name.lower()) for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME")}
    status, desk, _ = await allow_bus_client("desk", **dirs)
    assert status == 0, desk
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    desk_bus = BusMonitor(
        endpoint,
        keys=zmq.auth.load_certificate(desk["secret_key_file"]),
        server_key=desk["server_public_key"].encode(),
    )
    backend, ready = await BackendProcess.start(
        home,
        WEBSOCKET_TLS="auto",
        BUS_CURVE="on",
        ZMQ_PORT=endpoint.rsplit(":", 1)[1],
        **dirs,
    )
    assert ready["event"] == "ready", ready
    yield Secured(home, backend, ready, dirs, desk, desk_bus)
    desk_bus.close()
    backend.kill()
    await backend.process.wait()


@SHARED
async def test_the_ready_line_gives_wss_the_fingerprint_and_the_bus_key(secured):
    ready = secured.ready
    assert re.fullmatch(r"wss://127\.0\.0\.1:\d+", ready["ws"])
    assert re.fullmatch(r"tcp://127\.0\.0\.1:\d+", ready["zmq"])
    cert = x509.load_pem_x509_certificate((secured.config / "tls" / "cert.pem").read_bytes())
    assert ready["tls_fingerprint"] == fingerprint(cert.public_bytes(serialization.Encoding.DER))
    assert re.fullmatch(r"[0-9a-f]{64}", ready["tls_fingerprint"])
    server_key, _ = zmq.auth.load_certificate(secured.config / "bus" / "server.key")
    assert ready["bus_public_key"] == server_key.decode() == secured.desk["server_public_key"]
    assert ready["tls_fingerprint"] in secured.backend.stderr.read_text()


@SHARED
async def test_the_ready_health_names_the_endpoints_and_what_to_trust(secured):
    seen: list[dict] = []

    def ready(topic: str, payload: dict) -> bool:
        if topic == "SYS.HEALTH" and payload["component"] == "backend":
            seen.append(payload)
        return bool(seen)

    await secured.desk_bus.until(ready)
    assert seen[0]["state"] == "ready"
    for field in ("ws", "zmq", "tls_fingerprint", "bus_public_key"):
        assert seen[0][field] == secured.ready[field], field


@SHARED
async def test_a_pinned_client_gets_ticks_over_wss(secured):
    client = await Client.open(secured.ready["ws"], fingerprint=secured.ready["tls_fingerprint"])
    try:
        reply = await client.subscribe([("SBIN", "NSE")], mode=1)
        assert reply["status"] == "success", reply
        tick = await client.tick(symbol="SBIN", exchange="NSE", mode=1)
        assert tick["data"]["ltp"] > 0
    finally:
        await client.close()


@SHARED
async def test_a_wrong_fingerprint_is_refused_with_a_clear_message(secured):
    wrong = "AB:" * 31 + "AB"  # as openssl prints one
    presented = secured.ready["tls_fingerprint"]
    with pytest.raises(
        FingerprintMismatch,
        match=f"certificate has SHA-256 fingerprint {presented}, not the pinned {'ab' * 32}",
    ):
        await Client.open(secured.ready["ws"], fingerprint=wrong)


@SHARED
async def test_plain_ws_to_the_tls_port_fails(secured):
    plain = secured.ready["ws"].replace("wss://", "ws://")
    with pytest.raises(InvalidMessage, match="did not receive a valid HTTP response"):
        await Client.open(plain)


@POSIX
@SHARED
async def test_the_keys_are_for_their_owner_only(secured):
    def mode(*parts: str) -> int:
        return stat.S_IMODE(secured.config.joinpath(*parts).stat().st_mode)

    assert mode("tls") == 0o700 and mode("tls", "key.pem") == 0o600
    assert mode("bus") == 0o700
    for name in ("server.key", "server.key_secret"):
        assert mode("bus", name) == 0o600, name
    assert mode("bus", "client-keys", "desk.key_secret") == 0o600
    assert mode("bus", "clients", "desk.key") == 0o600


@SHARED
async def test_a_second_start_serves_the_same_certificate(secured):
    again, ready = await BackendProcess.start(secured.home, WEBSOCKET_TLS="auto", **secured.dirs)
    try:
        assert ready["tls_fingerprint"] == secured.ready["tls_fingerprint"]
        assert ready["bus_public_key"] is None  # BUS_CURVE=off
        assert "Generated a self-signed" not in again.stderr.read_text()
    finally:
        again.kill()
        await again.process.wait()


@SHARED
async def test_allow_bus_client_prints_the_keys_of_a_subscriber(secured):
    desk = secured.desk
    keys = secured.config / "bus" / "client-keys"
    assert desk == {
        "event": "bus_client",
        "name": "desk",
        "public_key_file": str(keys / "desk.key"),
        "secret_key_file": str(keys / "desk.key_secret"),
        "public_key": desk["public_key"],
        "server_public_key": secured.ready["bus_public_key"],
    }
    public, secret = zmq.auth.load_certificate(desk["secret_key_file"])
    assert public.decode() == desk["public_key"] and secret
    allowed, _ = zmq.auth.load_certificate(secured.config / "bus" / "clients" / "desk.key")
    assert allowed == public


@SHARED
async def test_a_subscriber_without_an_allowed_key_receives_nothing(secured):
    endpoint, server_key = secured.ready["zmq"], secured.ready["bus_public_key"].encode()
    stranger = BusMonitor(endpoint, keys=zmq.curve_keypair(), server_key=server_key)
    plain = BusMonitor(endpoint)
    try:
        assert await stranger.silent(REFUSED_WAIT)
        assert await plain.silent(0)
    finally:
        stranger.close()
        plain.close()


@SHARED
async def test_a_subscriber_allowed_while_the_backend_runs_receives_sys_pool(secured):
    status, late, _ = await allow_bus_client("late-laptop", **secured.dirs)
    assert status == 0, late
    bus = BusMonitor(  # at once: the backend asks the folder at each handshake
        secured.ready["zmq"],
        keys=zmq.auth.load_certificate(late["secret_key_file"]),
        server_key=late["server_public_key"].encode(),
    )
    try:
        await bus.until(lambda topic, _: topic == "SYS.POOL")
    finally:
        bus.close()


@SHARED
async def test_a_revoked_subscriber_is_cut_off_and_the_others_keep_receiving(secured):
    status, gone, _ = await allow_bus_client("gone-pc", **secured.dirs)
    assert status == 0, gone
    bus = BusMonitor(
        secured.ready["zmq"],
        keys=zmq.auth.load_certificate(gone["secret_key_file"]),
        server_key=gone["server_public_key"].encode(),
    )
    handshakes = bus.socket.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_AUTH)
    try:
        await bus.until(lambda topic, _: topic == "SYS.POOL")
        (secured.config / "bus" / "clients" / "gone-pc.key").unlink()
        async with asyncio.timeout(REVOKED_WITHIN):
            refusal = await recv_monitor_message(handshakes)
        assert refusal["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH
        while await bus.socket.poll(0):  # what came before the cut
            await bus.socket.recv_multipart()
        await secured.desk_bus.until(lambda topic, _: topic == "SYS.POOL")
        assert await bus.silent(REFUSED_WAIT)
        assert "1 bus client keys revoked" in secured.backend.stderr.read_text()
    finally:
        handshakes.close()
        bus.close()


@SHARED
async def test_no_secret_in_the_log_or_the_ready_line(secured):
    secrets = [API_KEY]
    key_pem = (secured.config / "tls" / "key.pem").read_text()
    secrets += [line for line in key_pem.splitlines() if line and not line.startswith("-----")]
    bus = secured.config / "bus"
    for secret_file in (bus / "server.key_secret", *(bus / "client-keys").glob("*.key_secret")):
        _, secret = zmq.auth.load_certificate(secret_file)
        secrets.append(secret.decode())
    logs = [
        secured.backend.stderr.read_text(),
        secured.log_file.read_text(),
        json.dumps(secured.ready),
    ]
    assert len(secrets) >= 4
    for text in logs:
        for secret in secrets:
            assert secret not in text


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("LocalHost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("*", False),
        ("192.168.1.20", False),
        ("trader-pc.lan", False),
    ],
)
def test_only_loopback_binds_are_kept_to_this_machine(host, loopback):
    assert is_loopback(host) is loopback


def test_a_wildcard_bind_is_announced_at_loopback():
    assert local_url("wss", "0.0.0.0", 8765) == "wss://127.0.0.1:8765"
    assert local_url("tcp", "*", 5555) == "tcp://127.0.0.1:5555"
    assert local_url("ws", "::", 8765) == "ws://[::1]:8765"
    assert local_url("ws", "192.168.1.20", 8765) == "ws://192.168.1.20:8765"


def test_allowing_a_bus_client_again_keeps_its_keys():
    first = allow_client("desk")
    (allowed_clients_dir() / "desk.key").unlink()
    assert allow_client("desk") == first
    assert (allowed_clients_dir() / "desk.key").is_file()


async def test_allow_bus_client_refuses_an_unsafe_name():
    status, line, _ = await allow_bus_client("../evil")
    assert status == 2
    assert line["event"] == "error" and line["code"] == "INVALID_ARGUMENT"
    assert "'../evil'" in line["message"] and "letters, digits" in line["message"]


@pytest.mark.parametrize(
    ("setting", "named", "remedy"),
    [
        ({"WEBSOCKET_HOST": "0.0.0.0"}, "WEBSOCKET_HOST=0.0.0.0", "WEBSOCKET_TLS=auto"),
        ({"ZMQ_HOST": "0.0.0.0"}, "ZMQ_HOST=0.0.0.0", "BUS_CURVE=on"),
    ],
)
async def test_an_open_bind_in_the_clear_is_refused_naming_the_setting(
    backends, setting, named, remedy
):
    backend, line = await backends(**setting)
    assert await backend.exited() == 2
    assert line["event"] == "error" and line["code"] == "INSECURE_REMOTE"
    assert line["message"].startswith(named) and remedy in line["message"]
    assert "ALLOW_INSECURE_REMOTE=1" in line["message"]


async def test_allow_insecure_remote_serves_every_interface_in_the_clear(backends):
    backend, ready = await backends(
        WEBSOCKET_HOST="0.0.0.0", ZMQ_HOST="0.0.0.0", ALLOW_INSECURE_REMOTE="1"
    )
    assert ready["event"] == "ready", ready
    assert re.fullmatch(r"ws://127\.0\.0\.1:\d+", ready["ws"])
    assert re.fullmatch(r"tcp://127\.0\.0\.1:\d+", ready["zmq"])
    assert ready["tls_fingerprint"] is None and ready["bus_public_key"] is None
    client = await Client.open(ready["ws"])
    await client.close()
    bus = BusMonitor(ready["zmq"])
    try:
        await bus.until(lambda topic, _: topic == "SYS.POOL")
    finally:
        bus.close()
    log = backend.stderr.read_text()
    assert "WEBSOCKET_HOST=0.0.0.0 serves the client API to other machines without TLS" in log
    assert "ZMQ_HOST=0.0.0.0 serves the bus to other machines unencrypted" in log


async def test_tls_on_without_its_files_is_a_bad_setting(backends):
    backend, line = await backends(WEBSOCKET_TLS="on")
    assert await backend.exited() == 2
    assert line == {
        "event": "error",
        "code": "INVALID_SETTING",
        "message": "invalid setting WEBSOCKET_TLS_CERT='': a PEM file is required with "
        "WEBSOCKET_TLS=on",
    }
