"""The host's ceiling: how many ticks a second this machine can put through to a benchmark client.

``python bench/ceiling.py`` serves the client API's handshake (``authenticate``, bulk
``subscribe`` requests) and then nothing but Quote ``market_data`` frames, built once per symbol
in the proxy's own format with only the timestamp written per batch, as fast as the client's
socket takes them. It prints ``{"event": "ready", "ws": URL}`` and serves until stopped. What
``bench/client.py`` receives from it is the most any server could deliver to that client on this
machine in that run: the backend's figures read as a fraction of it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time

import picows

from backend.feed import QUOTE, QUOTE_FIELDS
from backend.proxy.frames import FrameParts
from backend.runtime.event_loop import run

#: Frames sent between two looks at the event loop.
BATCH = 500
#: A Quote tick's values, for every field but the symbol's and the timestamp.
SAMPLE = {"mode": QUOTE, "ltp": 812.35, "ltt": 0, "open": 800.1, "high": 815.0, "low": 799.5,
          "close": 805.2, "volume": 1234567, "last_trade_quantity": 25, "average_price": 808.4,
          "avg_trade_price": 808.4, "total_buy_quantity": 120000, "total_sell_quantity": 98000,
          "change": 7.15, "change_percent": 0.89}  # fmt: skip
MARKER = b"TIMESTAMP"


def frame_parts(symbol: str, exchange: str) -> tuple[bytes, bytes]:
    """A symbol's Quote frame cut where its timestamp goes: ``(before, after)``."""
    data = {**SAMPLE, "symbol": symbol, "exchange": exchange, "timestamp": 0}
    assert set(data) == set(QUOTE_FIELDS)
    body = json.dumps(data, separators=(",", ":")).encode().replace(b'"timestamp":0', MARKER)
    frame = FrameParts.of(symbol, exchange, QUOTE, "simulator").frame(body)
    before, after = frame.split(MARKER)
    return before + b'"timestamp":', after


class Pusher(picows.WSListener):
    """Answers the handshake, then sends every subscribed symbol's frame, round after round."""

    def __init__(self) -> None:
        super().__init__()
        self._writable = asyncio.Event()
        self._writable.set()
        self._task: asyncio.Task[None] | None = None
        #: Every subscribed symbol's frame, cut where its timestamp goes.
        self._parts: list[tuple[bytes, bytes]] = []

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type is not picows.WSMsgType.TEXT:
            return
        request = json.loads(frame.get_payload_as_bytes())
        if request.get("action") == "authenticate":
            self._reply(transport, {"type": "auth", "status": "success"})
        elif request.get("action") == "subscribe":
            symbols = [(s["symbol"], s["exchange"]) for s in request["symbols"]]
            subscriptions = [
                {"symbol": s, "exchange": e, "status": "success", "mode": QUOTE} for s, e in symbols
            ]
            self._reply(
                transport,
                {"type": "subscribe", "status": "success", "subscriptions": subscriptions},
            )
            self._parts += [frame_parts(s, e) for s, e in symbols]
            if self._task is None:
                self._task = asyncio.get_running_loop().create_task(self._push(transport))

    @staticmethod
    def _reply(transport: picows.WSTransport, message: dict) -> None:
        transport.send(picows.WSMsgType.TEXT, json.dumps(message).encode())

    async def _push(self, transport: picows.WSTransport) -> None:
        send, text, socket = transport.send, picows.WSMsgType.TEXT, transport.underlying_transport
        parts = self._parts
        while True:
            for start in range(0, len(parts), BATCH):
                await self._writable.wait()
                stamp = str(int(time.time() * 1000)).encode()
                for before, after in parts[start : start + BATCH]:
                    if socket.is_closing():  # the client left: a write now would only warn
                        return
                    send(text, before + stamp + after)
                await asyncio.sleep(0)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
        if self._task is not None:
            self._task.cancel()


async def serve() -> None:
    server = await picows.ws_create_server(lambda request: Pusher(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"event": "ready", "ws": f"ws://127.0.0.1:{port}"}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    run(serve())  # on the backend's own kind of event loop
