"""The proxy's parts on their own: outbox, throttle, subscription index, messages and frames."""

from __future__ import annotations

import asyncio
import json

import pytest

from backend.feed import INVALID_MODE
from backend.proxy.errors import RequestError
from backend.proxy.frames import FrameParts, trimmed
from backend.proxy.index import SubscriptionIndex
from backend.proxy.messages import parse_mode, parse_subscribe, parse_unsubscribe
from backend.proxy.outbox import Outbox
from backend.proxy.throttle import Throttle


async def test_outbox_keeps_every_frame_until_full_then_the_newest_per_key():
    stalled = []
    outbox = Outbox(lambda: stalled.append(True), limit=3, stall_seconds=5)
    for n, key in enumerate(["a", "b", "a"]):
        outbox.put(key, f"{key}{n}".encode(), now=0)
    for n, key in enumerate(["a", "b", "a", "c", "a"], start=3):
        outbox.put(key, f"{key}{n}".encode(), now=1)
    assert len(outbox) == 6 and outbox.conflated == 2
    assert await outbox.take() == [b"a0", b"b1", b"a2", b"a7", b"b4", b"c6"]
    outbox.put("a", b"a8", now=2)
    assert await outbox.take() == [b"a8"]
    assert not stalled


async def test_outbox_reports_a_stall_once_when_full_past_the_limit():
    stalled = []
    outbox = Outbox(lambda: stalled.append(True), limit=1, stall_seconds=5)
    outbox.put("a", b"1", now=0)
    for now in (10, 14.9):  # full since 10
        outbox.put("a", b"2", now=now)
    assert not stalled
    for now in (15, 16, 30):
        outbox.put("a", b"3", now=now)
    assert stalled == [True]


async def test_outbox_take_waits_for_a_frame():
    outbox = Outbox(lambda: None)
    taking = asyncio.ensure_future(outbox.take())
    await asyncio.sleep(0)
    assert not taking.done()
    outbox.put("a", b"1", now=0)
    assert await asyncio.wait_for(taking, 1) == [b"1"]


async def test_throttle_passes_at_most_one_per_interval_and_always_the_newest():
    loop = asyncio.get_running_loop()
    passed: list[tuple[str, bytes, float]] = []
    released = asyncio.Event()

    def forward(key, frame, now):
        passed.append((key, frame, now))
        if frame == b"a3":
            released.set()

    throttle = Throttle(0.05, forward)
    start = loop.time()
    for frame in (b"a1", b"a2", b"a3"):
        throttle.offer("a", frame, start)
    throttle.offer("b", b"b1", start)
    assert [frame for _, frame, _ in passed] == [b"a1", b"b1"]
    await asyncio.wait_for(released.wait(), 1)
    assert [frame for _, frame, _ in passed] == [b"a1", b"b1", b"a3"]
    assert passed[-1][2] - start >= 0.05 and throttle.superseded == 1
    throttle.offer("a", b"a4", loop.time())  # due again only an interval after a3
    assert len(passed) == 3
    throttle.close()
    await asyncio.sleep(0.08)
    assert len(passed) == 3


class Holder:
    def __init__(self):
        self.frames = []

    def push(self, key, frame, now):
        self.frames.append((key, frame))


def test_index_routes_each_topic_to_every_mode_it_serves():
    index = SubscriptionIndex("simulator")
    ltp, depth = Holder(), Holder()
    index.add(ltp, "SBIN", "NSE", 1)
    assert set(index.routes) == {b"NSE_SBIN_LTP", b"NSE_SBIN_QUOTE", b"NSE_SBIN_DEPTH"}
    index.add(depth, "SBIN", "NSE", 3)
    route = index.routes[b"NSE_SBIN_DEPTH"]
    assert route.mode == 3 and [t.mode for t in route.targets] == [1, 3]
    assert [t.mode for t in index.routes[b"NSE_SBIN_QUOTE"].targets] == [1]
    assert index.holders("SBIN", "NSE", 3) == {depth}

    index.discard(ltp, "SBIN", "NSE", 1)
    assert set(index.routes) == {b"NSE_SBIN_DEPTH"} and len(index) == 1
    index.discard(ltp, "SBIN", "NSE", 3)  # not held: nothing changes
    assert index.holders("SBIN", "NSE", 3) == {depth}
    index.discard(depth, "SBIN", "NSE", 3)
    assert index.routes == {} and len(index) == 0


def test_frames_join_the_payload_as_it_came_or_trim_it_to_a_lower_mode():
    tick = {"symbol": "SBIN", "exchange": "NSE", "mode": 2, "ltp": 1.5, "ltt": 1, "timestamp": 2}
    tick |= {"open": 1.0, "volume": 7}
    payload = json.dumps(tick).encode()
    parts = FrameParts.of("SBIN", "NSE", 2, "simulator")
    assert json.loads(parts.frame(payload)) == {
        "type": "market_data",
        "symbol": "SBIN",
        "exchange": "NSE",
        "mode": 2,
        "data": tick,
        "broker": "simulator",
    }
    assert json.loads(trimmed(tick, 1)) == {
        "symbol": "SBIN",
        "exchange": "NSE",
        "mode": 1,
        "ltp": 1.5,
        "ltt": 1,
        "timestamp": 2,
    }


@pytest.mark.parametrize(
    ("given", "mode"),
    [(None, 2), (1, 1), (3, 3), ("LTP", 1), ("quote", 2), ("Depth", 3), (" DEPTH ", 3), ("2", 2)],
)
def test_modes_by_number_or_name(given, mode):
    assert parse_mode(given) == mode


@pytest.mark.parametrize("given", [0, 4, -1, True, 1.5, "snap", "", [], {}])
def test_bad_modes(given):
    with pytest.raises(RequestError) as caught:
        parse_mode(given)
    assert caught.value.code == INVALID_MODE


def test_requests_drop_repeats_and_take_per_symbol_modes():
    sbin, infy = {"symbol": "SBIN", "exchange": "NSE"}, {"symbol": "INFY", "exchange": "NSE"}
    request = parse_subscribe({"symbols": [sbin, infy, sbin], "mode": "LTP"})
    assert request.symbols == [("SBIN", "NSE"), ("INFY", "NSE")] and request.mode == 1
    assert parse_subscribe({"symbol": "SBIN", "exchange": "NSE"}).symbols == [("SBIN", "NSE")]
    unsubscribe = parse_unsubscribe({"symbols": [sbin, {**infy, "mode": 3}], "mode": 1})
    assert unsubscribe.subscriptions == [("SBIN", "NSE", 1), ("INFY", "NSE", 3)]
    assert parse_unsubscribe({"symbols": [sbin]}).subscriptions == [("SBIN", "NSE", 2)]
