"""One benchmark client: a real WebSocket client of the backend, in a process of its own.

Usage: ``python bench/client.py WS_URL API_KEY MODE SYMBOLS_JSON``, where ``SYMBOLS_JSON`` is a
file holding ``[[symbol, exchange], ...]``. The client authenticates, subscribes everything in
one bulk request and prints ``{"event": "subscribed", ...}``. It then reads one line from stdin,
``{"start_ms": T0, "end_ms": T1, "grace_s": G, "watch": ["NSE_SBIN", ...]}``, counts the ticks
whose exchange timestamp falls in ``[T0, T1)``, reading until ``T1 + G`` so that ticks in flight
at ``T1`` count too, prints ``{"event": "result", "received": N, "histogram": {...},
"sampled": {"NSE_SBIN": n, ...}}`` (the ticks of each watched subscription) and exits.

``histogram`` maps half-millisecond buckets of latency (receipt time minus the simulator's
exchange timestamp) to counts, so that several clients' latencies merge exactly. To measure the
backend rather than itself, the client parses nothing of a frame but its timestamp and, near its
start, which subscription it is.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time

from websockets.asyncio.client import ClientConnection, connect

TIMESTAMP = re.compile(rb'"timestamp":(\d+)')
SUBSCRIPTION = re.compile(rb'"symbol":"([^"]*)","exchange":"([^"]*)"')
BUCKETS_PER_MS = 2

Sample = tuple[int, float]  # (exchange timestamp ms, receipt time ms)


def emit(event: dict) -> None:
    print(json.dumps(event), flush=True)


async def subscribe(websocket: ClientConnection, api_key: str, mode: int, symbols: list) -> dict:
    """Authenticate and subscribe; the subscribe reply."""
    await websocket.send(json.dumps({"action": "authenticate", "api_key": api_key}))
    auth = json.loads(await websocket.recv())
    if auth.get("status") != "success":
        raise SystemExit(f"authentication failed: {auth}")
    request = {
        "action": "subscribe",
        "symbols": [{"symbol": s, "exchange": e} for s, e in symbols],
        "mode": mode,
    }
    await websocket.send(json.dumps(request))
    while True:  # ticks may come before the reply
        reply = json.loads(await websocket.recv())
        if reply.get("type") == "subscribe":
            return reply


async def receive(
    websocket: ClientConnection, samples: list[Sample], watched: set[bytes], seen: list
) -> None:
    """Stamp every tick with its receipt time; note the ticks of the ``watched`` subscriptions."""
    search, subscription, clock = TIMESTAMP.search, SUBSCRIPTION.search, time.time
    while True:
        frame = await websocket.recv(decode=False)
        match = search(frame)
        if match is not None:
            stamp = int(match.group(1))
            samples.append((stamp, clock() * 1000))
            named = subscription(frame, 0, 120)
            if named is not None:
                key = named.group(2) + b"_" + named.group(1)
                if key in watched:
                    seen.append((key, stamp))


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


async def run(url: str, api_key: str, mode: int, symbols: list) -> None:
    async with connect(url, compression=None, max_size=None, max_queue=1024) as websocket:
        reply = await subscribe(websocket, api_key, mode, symbols)
        failed = sum(entry["status"] != "success" for entry in reply["subscriptions"])
        emit({"event": "subscribed", "status": reply["status"], "failed": failed})
        samples: list[Sample] = []
        watched: set[bytes] = set()
        seen: list[tuple[bytes, int]] = []
        reading = asyncio.create_task(receive(websocket, samples, watched, seen))
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        window = json.loads(line)
        watched.update(key.encode() for key in window["watch"])
        await asyncio.sleep(max(0.0, window["end_ms"] / 1000 - time.time()) + window["grace_s"])
        reading.cancel()
    start, end = window["start_ms"], window["end_ms"]
    received, histogram = tally(samples, start, end)
    sampled: dict[str, int] = {}
    for key, stamp in seen:
        if start <= stamp < end:
            sampled[key.decode()] = sampled.get(key.decode(), 0) + 1
    emit({"event": "result", "received": received, "histogram": histogram, "sampled": sampled})


def main() -> None:
    url, api_key, mode, path = sys.argv[1:5]
    with open(path, encoding="utf-8") as handle:
        symbols = json.load(handle)
    asyncio.run(run(url, api_key, int(mode), symbols))


if __name__ == "__main__":
    main()
