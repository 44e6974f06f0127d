"""The soak's clients of the WebSocket API: many connections in one process, commanded on stdin.

Usage: ``python bench/soak_client.py API_KEY``. Each stdin line is one JSON command with a
``ref``; each is worked in a task of its own and answered by one JSON line with the same
``ref``. A connection the server closes is reported unasked:
``{"event": "disconnected", "id": ..., "code": ..., "reason": ...}``. Commands:

- ``open {id, url, small_buffer}``: connect and authenticate; an ``id`` that held symbols
  before (its backend restarted) subscribes them all again in one request. ``small_buffer``
  shrinks the socket's receive buffer, so a client that stops reading backs up at once.
  ``{"resubscribe": RESULT}`` (``null`` when nothing was held), or ``{"error": ...}``.
- ``subscribe {requests: [[id, [[symbol, exchange], ...], mode], ...], await_tick_s}``: every
  request sent at once; ``{"results": [RESULT, ...]}``. With ``await_tick_s``, each symbol
  subscribed must tick within that many seconds of its reply, or it is listed as ``silent``.
- ``unsubscribe {requests: [[id, [[symbol, exchange], ...], mode], ...]}``: the same.
- ``close {id}``, ``stall {id}`` (stop reading; answers the connection's local address, as
  ``SYS.CLIENTS`` names it), ``resume {id}`` (read again and wait for the close; its code).
- ``wait {since_ms, within_s, grace_s}``: until every symbol held by every connection has ticked
  since ``since_ms``. ``{"recovered_ms": T or null, "late": N, "lost": [[id, key], ...]}``: the
  time the last one ticked (``null`` if not within ``within_s``), how many were late, and those
  that had not ticked ``grace_s`` later, which are written off (not waited for again).
- ``silence {}``: each connection's longest gap between two frames since the last ``silence``.

A RESULT is ``{"latency_ms", "ok", "failed", "silent"}``, or ``{"unanswered": true}`` when no
reply came within :data:`REPLY_SECONDS`, or ``{"disconnected": true}``. Keys are
``EXCHANGE_SYMBOL``; every symbol is held in the modes subscribed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import sys
import time
from typing import Any

import picows
from client import MARKET_DATA, SUBSCRIPTION, emit

REPLY_SECONDS = 10.0
POLL_SECONDS = 0.02
SMALL_BUFFER = 4096
CLOSE_SECONDS = 5.0


def now_ms() -> float:
    return time.time() * 1000


class Connection(picows.WSListener):
    """One client: the newest tick's receipt time per subscription, replies by ``request_id``."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.transport: picows.WSTransport | None = None
        self.last: dict[str, float] = {}
        #: The symbols the server said ``success`` for: key -> (symbol, exchange), and modes.
        self.held: dict[str, tuple[str, str]] = {}
        self.modes: dict[str, set[int]] = {}
        self.written_off: set[str] = set()
        self.pending: dict[Any, asyncio.Future] = {}
        self.auth: asyncio.Future | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.closing = False
        self.previous_frame = 0.0
        self.longest_gap = 0.0
        self.close_code: int | None = None
        self.close_reason = ""
        self._ids = itertools.count(1)

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        at = now_ms()
        if self.previous_frame:
            self.longest_gap = max(self.longest_gap, at - self.previous_frame)
        self.previous_frame = at
        if frame.msg_type is picows.WSMsgType.CLOSE:
            self.close_code, self.close_reason = frame.get_close_code(), frame.get_close_message()
            return
        if frame.msg_type is not picows.WSMsgType.TEXT:
            return
        payload = frame.get_payload_as_bytes()
        if payload.startswith(MARKET_DATA):
            named = SUBSCRIPTION.search(payload, 0, 120)
            if named is not None:
                self.last[(named.group(2) + b"_" + named.group(1)).decode()] = at
            return
        reply = json.loads(payload)
        if reply.get("type") == "auth" and self.auth is not None and not self.auth.done():
            self.auth.set_result(reply)
            return
        waiting = self.pending.pop(reply.get("request_id"), None)
        if waiting is not None and not waiting.done():
            waiting.set_result(reply)

    def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
        for waiting in (*self.pending.values(), self.auth):
            if waiting is not None and not waiting.done():
                waiting.set_exception(ConnectionError("disconnected"))
        self.pending.clear()
        if not self.closed.done():
            self.closed.set_result(None)
        if not self.closing:
            event = {"event": "disconnected", "id": self.name, "code": self.close_code}
            emit({**event, "reason": self.close_reason})

    def send(self, message: dict) -> None:
        self.transport.send(picows.WSMsgType.TEXT, json.dumps(message).encode())

    async def request(
        self, action: str, symbols: list[list[str]], mode: int, await_tick_s: float = 0.0
    ) -> dict[str, Any]:
        """One subscribe or unsubscribe; what it did (see the module's RESULT)."""
        if self.transport is None or self.closed.done():
            return {"disconnected": True}
        request_id = next(self._ids)
        reply = self.pending[request_id] = asyncio.get_running_loop().create_future()
        entries = [{"symbol": s, "exchange": e} for s, e in symbols]
        self.send({"action": action, "symbols": entries, "mode": mode, "request_id": request_id})
        start = now_ms()
        try:
            answer = await asyncio.wait_for(reply, REPLY_SECONDS)
        except TimeoutError:
            self.pending.pop(request_id, None)
            return {"unanswered": True}
        except ConnectionError:
            return {"disconnected": True}
        latency = now_ms() - start
        if action == "subscribe":
            done = [e for e in answer.get("subscriptions", []) if e["status"] == "success"]
            failed = [e for e in answer.get("subscriptions", []) if e["status"] != "success"]
            keys = [self.hold(e["symbol"], e["exchange"], mode) for e in done]
        else:
            done, failed = answer.get("successful", []), answer.get("failed", [])
            for entry in done:
                self.let_go(entry["symbol"], entry["exchange"], mode)
            keys = []
        if answer.get("type") == "error":
            failed = [answer]
        result = {"latency_ms": latency, "ok": len(done), "failed": failed[:3], "silent": []}
        if keys and await_tick_s:
            result["silent"] = await self.silent(keys, start, await_tick_s)
        return result

    def hold(self, symbol: str, exchange: str, mode: int) -> str:
        key = f"{exchange}_{symbol}"
        self.held[key] = (symbol, exchange)
        self.modes.setdefault(key, set()).add(mode)
        return key

    def let_go(self, symbol: str, exchange: str, mode: int) -> None:
        key = f"{exchange}_{symbol}"
        modes = self.modes.get(key, set())
        modes.discard(mode)
        if not modes:
            self.held.pop(key, None)
            self.modes.pop(key, None)
            self.written_off.discard(key)

    async def silent(self, keys: list[str], since: float, within: float) -> list[str]:
        """Those of ``keys`` that did not tick within ``within`` s of ``since``."""
        deadline = time.monotonic() + within
        waiting = set(keys)
        while waiting and time.monotonic() < deadline:
            waiting = {k for k in waiting if self.last.get(k, 0.0) < since and k in self.held}
            await asyncio.sleep(POLL_SECONDS)
        return sorted(k for k in waiting if self.last.get(k, 0.0) < since and k in self.held)

    def waiting_since(self, since: float) -> set[str]:
        return {k for k in self.held if k not in self.written_off and self.last.get(k, 0.0) < since}


class Clients:
    """Every connection of this process, by name, and the commands on them."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.connections: dict[str, Connection] = {}

    async def open(self, id: str, url: str, small_buffer: bool = False) -> dict[str, Any]:
        before = self.connections.get(id)

        def small(_: Any) -> socket.socket:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
            return sock

        try:
            _, connection = await picows.ws_connect(
                lambda: Connection(id),
                url,
                max_frame_size=2**24,
                socket_factory=small if small_buffer else None,
            )
            connection.auth = asyncio.get_running_loop().create_future()
            connection.send({"action": "authenticate", "api_key": self.api_key})
            auth = await asyncio.wait_for(connection.auth, REPLY_SECONDS)
        except (OSError, TimeoutError, ConnectionError, picows.WSError) as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}
        if auth.get("status") != "success":
            return {"error": f"authentication refused: {auth.get('message')}"}
        self.connections[id] = connection
        if before is None or not before.held:
            return {"resubscribe": None}
        by_mode: dict[int, list[list[str]]] = {}
        for key, symbol in before.held.items():
            for mode in before.modes[key]:
                by_mode.setdefault(mode, []).append(list(symbol))
        results = [await connection.request("subscribe", s, m) for m, s in by_mode.items()]
        return {"resubscribe": results[0] if len(results) == 1 else results}

    async def requests(self, action: str, requests: list, await_tick_s: float = 0.0) -> dict:
        async def one(id: str, symbols: list, mode: int) -> dict:
            connection = self.connections.get(id)
            if connection is None:
                return {"disconnected": True}
            return await connection.request(action, symbols, mode, await_tick_s)

        return {"results": await asyncio.gather(*(one(*request) for request in requests))}

    async def close(self, id: str) -> dict[str, Any]:
        connection = self.connections.pop(id, None)
        if connection is not None and connection.transport is not None:
            connection.closing = True
            connection.transport.send_close(picows.WSCloseCode.OK)
            connection.transport.disconnect()
            await asyncio.wait_for(connection.closed, CLOSE_SECONDS)
        return {}

    def stall(self, id: str) -> dict[str, Any]:
        transport = self.connections[id].transport.underlying_transport
        transport.pause_reading()
        host, port = transport.get_extra_info("sockname")[:2]
        return {"peer": f"{host}:{port}"}

    async def resume(self, id: str) -> dict[str, Any]:
        connection = self.connections.pop(id)
        connection.closing = True
        connection.transport.underlying_transport.resume_reading()
        try:
            await asyncio.wait_for(asyncio.shield(connection.closed), CLOSE_SECONDS)
        except TimeoutError:
            connection.transport.disconnect()
            return {"code": None, "reason": "still open"}
        return {"code": connection.close_code, "reason": connection.close_reason}

    async def wait(self, since_ms: float, within_s: float, grace_s: float) -> dict[str, Any]:
        start = time.monotonic()
        waiting = {
            (id, key)
            for id, connection in self.connections.items()
            for key in connection.waiting_since(since_ms)
        }
        late = 0
        while waiting:
            waiting = {
                (id, key)
                for id, key in waiting
                if id in self.connections and key in self.connections[id].waiting_since(since_ms)
            }
            elapsed = time.monotonic() - start
            if not waiting or elapsed > within_s + grace_s:
                break
            if elapsed > within_s and not late:
                late = len(waiting)
            await asyncio.sleep(POLL_SECONDS)
        recovered = None if waiting else now_ms()
        for id, key in waiting:
            self.connections[id].written_off.add(key)
        return {"recovered_ms": recovered, "late": late, "lost": sorted(waiting)}

    def silence(self) -> dict[str, Any]:
        gaps = {}
        for id, connection in self.connections.items():
            gaps[id], connection.longest_gap = connection.longest_gap, 0.0
        return {"longest_ms": gaps}


async def answer(clients: Clients, command: dict[str, Any]) -> None:
    fields = {k: v for k, v in command.items() if k not in ("cmd", "ref")}
    name = command["cmd"]
    try:
        if name in ("subscribe", "unsubscribe"):
            result = await clients.requests(name, **fields)
        elif name in ("stall", "silence"):
            result = getattr(clients, name)(**fields)
        else:
            result = await getattr(clients, name)(**fields)
    except Exception as exc:  # answered, so the soak reports it rather than waiting on it
        result = {"error": f"{name}: {type(exc).__name__}: {exc}"}
    emit({"ref": command["ref"], **result})


async def main(api_key: str) -> None:
    clients = Clients(api_key)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks = set()
    while line := await reader.readline():
        task = loop.create_task(answer(clients, json.loads(line)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
