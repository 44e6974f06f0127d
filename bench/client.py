"""One benchmark client: a real WebSocket client of the backend, in a process of its own.

Usage: ``python bench/client.py WS_URL API_KEY MODE SYMBOLS_JSON [FINGERPRINT]``, where
``SYMBOLS_JSON`` is a file holding ``[[symbol, exchange], ...]``. With ``FINGERPRINT`` the URL is
a ``wss://`` one, and the client checks that the server's certificate has that fingerprint
before it sends anything (:func:`backend.security.tls.check_pinned`). The client authenticates,
subscribes everything in bulk requests (as many symbols each as the API takes) and prints
``{"event": "subscribed", ...}``. It then reads one line from stdin, ``{"start_ms": T0,
"end_ms": T1, "grace_s": G, "watch": ["NSE_SBIN", ...]}``, counts the ticks whose exchange
timestamp falls in ``[T0, T1)``, reading until ``T1 + G`` so that ticks in flight at ``T1`` count
too, prints ``{"event": "result", "received": N, "histogram": {...}, "sampled": {"NSE_SBIN": n,
...}}`` (the ticks of each watched subscription) and exits.

``histogram`` maps half-millisecond buckets of latency (receipt time minus the simulator's
exchange timestamp) to counts, so that several clients' latencies merge exactly. A window with
``"slot_ms": S`` also gets ``"slots"``: such a histogram per slot of S ms of receipt time from
T0 on, whatever the ticks' stamps (how late ticks were as time went by); and one with
``"newest_before_ms": T`` gets ``"newest"``: per subscription (``"NSE_SBIN"``), the newest
exchange timestamp before T it received. To measure the backend rather than itself, the client
reads with picows (each frame handed over as it is parsed) and parses nothing of a tick but its
timestamp and, near its start, which subscription it is.
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
import sys
import time

import picows

from backend.proxy.messages import MAX_SYMBOLS_PER_REQUEST
from backend.security.tls import check_pinned, pinned_client_context

TIMESTAMP = re.compile(rb'"timestamp":(\d+)')
SUBSCRIPTION = re.compile(rb'"symbol":"([^"]*)","exchange":"([^"]*)"')
MARKET_DATA = b'{"type":"market_data"'
BUCKETS_PER_MS = 2

Sample = tuple[int, float]  # (exchange timestamp ms, receipt time ms)


def emit(event: dict) -> None:
    print(json.dumps(event), flush=True)


class Client(picows.WSListener):
    """Stamps every tick with its receipt time, notes the watched ones, queues the replies."""

    def __init__(self) -> None:
        super().__init__()
        self.transport: picows.WSTransport | None = None
        self.replies: asyncio.Queue[dict] = asyncio.Queue()
        self.samples: list[Sample] = []
        self.watched: set[bytes] = set()
        #: The watched ticks: ``(subscription, exchange timestamp ms, receipt time ms)``.
        self.seen: list[tuple[bytes, int, float]] = []
        #: Every subscription's newest exchange timestamp before :attr:`newest_before`, if set.
        self.newest: dict[bytes, int] = {}
        self.newest_before = 0
        self._search, self._subscription, self._clock = (
            TIMESTAMP.search,
            SUBSCRIPTION.search,
            time.time,
        )

    def on_ws_connected(self, transport: picows.WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type is not picows.WSMsgType.TEXT:
            return
        payload = frame.get_payload_as_bytes()
        if not payload.startswith(MARKET_DATA):
            self.replies.put_nowait(json.loads(payload))
            return
        match = self._search(payload)
        if match is None:
            return
        stamp, at = int(match.group(1)), self._clock() * 1000
        self.samples.append((stamp, at))
        if self.watched or self.newest_before:
            named = self._subscription(payload, 0, 120)
            if named is not None:
                key = named.group(2) + b"_" + named.group(1)
                if key in self.watched:
                    self.seen.append((key, stamp, at))
                if stamp < self.newest_before and stamp > self.newest.get(key, 0):
                    self.newest[key] = stamp

    def send(self, message: dict) -> None:
        self.transport.send(picows.WSMsgType.TEXT, json.dumps(message).encode())


async def subscribe(client: Client, api_key: str, mode: int, symbols: list) -> list[dict]:
    """Authenticate and subscribe, in requests of as many symbols as the API takes; the
    subscribe replies."""
    client.send({"action": "authenticate", "api_key": api_key})
    auth = await client.replies.get()
    if auth.get("status") != "success":
        raise SystemExit(f"authentication failed: {auth}")
    replies = []
    for start in range(0, len(symbols), MAX_SYMBOLS_PER_REQUEST):
        request = symbols[start : start + MAX_SYMBOLS_PER_REQUEST]
        client.send(
            {
                "action": "subscribe",
                "symbols": [{"symbol": s, "exchange": e} for s, e in request],
                "mode": mode,
            }
        )
        while True:
            reply = await client.replies.get()
            if reply.get("type") == "subscribe":
                replies.append(reply)
                break
            if reply.get("status") == "error":
                raise SystemExit(f"the subscription was refused: {reply}")
    return replies


def tally(samples: list[Sample], start_ms: int, end_ms: int) -> tuple[int, dict[int, int]]:
    """Ticks stamped in ``[start_ms, end_ms)`` and their latency histogram."""
    histogram: dict[int, int] = {}
    received = 0
    for stamp, at in samples:
        if start_ms <= stamp < end_ms:
            received += 1
            bucket = int((at - stamp) * BUCKETS_PER_MS)
            histogram[bucket] = histogram.get(bucket, 0) + 1
    return received, histogram


def slots(samples: list[Sample], start_ms: int, slot_ms: int) -> dict[int, dict[int, int]]:
    """A latency histogram per ``slot_ms`` of receipt time from ``start_ms`` on."""
    histograms: dict[int, dict[int, int]] = {}
    for stamp, at in samples:
        if at >= start_ms:
            histogram = histograms.setdefault(int((at - start_ms) // slot_ms), {})
            bucket = int((at - stamp) * BUCKETS_PER_MS)
            histogram[bucket] = histogram.get(bucket, 0) + 1
    return histograms


async def run(url: str, api_key: str, mode: int, symbols: list, fingerprint: str | None) -> None:
    tls = {} if fingerprint is None else {"ssl_context": pinned_client_context()}
    transport, client = await picows.ws_connect(Client, url, max_frame_size=2**24, **tls)
    if fingerprint is not None:
        check_pinned(transport.underlying_transport.get_extra_info("ssl_object"), fingerprint)
    replies = await subscribe(client, api_key, mode, symbols)
    failed = sum(e["status"] != "success" for reply in replies for e in reply["subscriptions"])
    status = "success" if all(reply["status"] == "success" for reply in replies) else "error"
    emit({"event": "subscribed", "status": status, "failed": failed})
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    window = json.loads(line)
    client.watched.update(key.encode() for key in window["watch"])
    client.newest_before = window.get("newest_before_ms", 0)
    await asyncio.sleep(max(0.0, window["end_ms"] / 1000 - time.time()) + window["grace_s"])
    transport.disconnect()
    start, end = window["start_ms"], window["end_ms"]
    received, histogram = tally(client.samples, start, end)
    sampled: dict[str, int] = {}
    for key, stamp, _ in client.seen:
        if start <= stamp < end:
            sampled[key.decode()] = sampled.get(key.decode(), 0) + 1
    result = {"event": "result", "received": received, "histogram": histogram, "sampled": sampled}
    if "slot_ms" in window:
        result["slots"] = slots(client.samples, start, window["slot_ms"])
    if client.newest_before:
        result["newest"] = {key.decode(): stamp for key, stamp in client.newest.items()}
    emit(result)


def main() -> None:
    url, api_key, mode, path = sys.argv[1:5]
    fingerprint = sys.argv[5] if len(sys.argv) > 5 else None
    with open(path, encoding="utf-8") as handle:
        symbols = json.load(handle)
    # The samples pile up by the million and make no cycles: the collector's passes over them
    # would stall the client, and the stall would read as the backend's latency.
    gc.disable()
    asyncio.run(run(url, api_key, int(mode), symbols, fingerprint))


if __name__ == "__main__":
    main()
