"""A real WebSocket client of FeedPool's client API for the proxy tests, reading in the background.

Replies and ticks are sorted into two queues as they arrive, so a test can wait for the next reply
while ticks keep coming, and each tick is stamped with its receipt time. :class:`BusMonitor` reads
a backend's monitoring bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import zmq
import zmq.asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from backend.pool.accounts import PooledAccounts
from backend.pool.connection_pool import ConnectionPool
from backend.proxy import WebSocketProxy
from backend.security.secret import Secret
from backend.security.tls import FingerprintMismatch, check_pinned, pinned_client_context

API_KEY = "test-api-key"


async def start_proxy(pool: ConnectionPool | PooledAccounts, **options: Any) -> WebSocketProxy:
    """A proxy for ``pool`` (one account's, or several) on a free port, accepting
    :data:`API_KEY`."""
    if isinstance(pool, ConnectionPool):
        pool = PooledAccounts.of(pool)
    proxy = WebSocketProxy(pool, Secret(API_KEY), port=0, **options)
    await proxy.start()
    return proxy


def now_ms() -> float:
    return time.time() * 1000


async def eventually(predicate: Callable[[], bool], within: float = 15.0) -> None:
    """Wait until ``predicate()`` holds, checking every 10 ms."""
    async with asyncio.timeout(within):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.01)


class BusMonitor:
    """A SUB socket on a backend's bus (``SYS.`` topics), read until a condition holds.

    With ``keys`` (public, secret) and ``server_key``, it is a CURVE client of a CURVE bus.
    (``tests/conftest.py`` has the like for in-process publishers; a test module cannot import
    it, since ``tests/desktop`` has a conftest of its own.)
    """

    def __init__(
        self,
        endpoint: str,
        prefix: str = "SYS.",
        keys: tuple[bytes, bytes] | None = None,
        server_key: bytes | None = None,
    ) -> None:
        self.socket = zmq.asyncio.Context.instance().socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        if keys is not None:
            self.socket.curve_publickey, self.socket.curve_secretkey = keys
            self.socket.curve_serverkey = server_key
        self.socket.setsockopt_string(zmq.SUBSCRIBE, prefix)
        self.socket.connect(endpoint)

    async def until(self, done: Callable[[str, dict], bool], within: float = 20.0) -> None:
        """Read messages until ``done(topic, payload)`` holds for one."""
        async with asyncio.timeout(within):
            while True:
                topic, payload = await self.socket.recv_multipart()
                if done(topic.decode(), json.loads(payload)):
                    return

    async def silent(self, within: float) -> bool:
        """Whether no message comes within ``within`` seconds."""
        return not await self.socket.poll(within * 1000)

    def close(self) -> None:
        self.socket.close()


class Client:
    """One connection to the proxy; :meth:`open` connects it and starts reading."""

    def __init__(self, websocket: ClientConnection) -> None:
        self.websocket = websocket
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.ticks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.received = 0
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(
        cls,
        url: str,
        api_key: str | None = API_KEY,
        fingerprint: str | None = None,
        source: str | None = None,
    ) -> Client:
        """Connect to ``url`` and, unless ``api_key`` is None, authenticate.

        With ``fingerprint``, ``url`` is a ``wss://`` one, and the server's certificate must
        have that fingerprint (:class:`~backend.security.tls.FingerprintMismatch` else), checked
        before anything is sent. With ``source``, the connection comes from that local address (such
        as ``127.0.0.2``, another loopback address).
        """
        options = {} if fingerprint is None else {"ssl": pinned_client_context()}
        if source is not None:
            options["local_addr"] = (source, 0)
        websocket = await connect(url, compression=None, max_size=None, **options)
        if fingerprint is not None:
            try:
                check_pinned(websocket.transport.get_extra_info("ssl_object"), fingerprint)
            except FingerprintMismatch:
                await websocket.close()
                raise
        client = cls(websocket)
        if api_key is not None:
            reply = await client.request({"action": "authenticate", "api_key": api_key})
            assert reply["status"] == "success", reply
        return client

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in self.websocket:
                message = json.loads(frame)
                if message.get("type") == "market_data":
                    message["received_ms"] = now_ms()
                    self.received += 1
                    await self.ticks.put(message)
                else:
                    await self.replies.put(message)

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        await self.websocket.send(
            message if isinstance(message, str | bytes) else json.dumps(message)
        )

    async def reply(self, within: float = 10.0) -> dict[str, Any]:
        """The next message that is not a tick."""
        return await asyncio.wait_for(self.replies.get(), within)

    async def request(
        self, message: dict[str, Any] | str | bytes, within: float = 30.0
    ) -> dict[str, Any]:
        await self.send(message)
        return await self.reply(within)

    async def subscribe(
        self, symbols: list[tuple[str, str]], mode: int | str = 2, **fields: Any
    ) -> dict[str, Any]:
        return await self.request(
            {
                "action": "subscribe",
                "symbols": [{"symbol": s, "exchange": e} for s, e in symbols],
                "mode": mode,
                **fields,
            }
        )

    async def tick(self, within: float = 10.0, **match: Any) -> dict[str, Any]:
        """The next tick whose top-level fields equal ``match``."""

        async def find() -> dict[str, Any]:
            while True:
                tick = await self.ticks.get()
                if all(tick.get(name) == value for name, value in match.items()):
                    return tick

        return await asyncio.wait_for(find(), within)

    def drain_ticks(self) -> list[dict[str, Any]]:
        """The ticks received and not yet taken."""
        ticks = []
        while not self.ticks.empty():
            ticks.append(self.ticks.get_nowait())
        return ticks

    async def closed(self, within: float = 10.0) -> tuple[int | None, str | None]:
        """Wait for the server to close the connection: its close code and reason."""
        await asyncio.wait_for(self.websocket.wait_closed(), within)
        return self.websocket.close_code, self.websocket.close_reason

    async def close(self) -> None:
        await self.websocket.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
