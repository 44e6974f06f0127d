"""The brokers' codecs and adapters under any input (hypothesis).

Every function the adapters call on a broker's bytes or text either answers or raises its
protocol's :class:`ProtocolError`; an adapter fed anything, then flushed, never raises, holds
nothing back, counts what it drops, and still publishes the next good tick of a subscription it
holds. The request parsers the simulator runs on a client's text hold to the same. The examples
are derandomized, so every run tries the same ones.
"""

from __future__ import annotations

import asyncio
import json
import math
import struct

import kite_packets
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.brokers.angel import protocol as angel
from backend.brokers.angel.adapter import SmartStreamAdapter, SmartStreamCredentials
from backend.brokers.dhan import protocol as dhan
from backend.brokers.dhan.adapter import DhanAdapter, DhanCredentials
from backend.brokers.noren import protocol as noren
from backend.brokers.noren.adapter import NorenAdapter, NorenCredentials
from backend.brokers.zerodha import protocol as kite
from backend.brokers.zerodha.adapter import KiteAdapter, KiteCredentials
from backend.bus.publisher import ZmqPublisher
from backend.feed import DEPTH, LTP, MODES, QUOTE, tick_topic
from backend.instruments.master import Instrument
from backend.security.secret import Secret

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None)

SBIN = Instrument("3045", "SBIN", "State Bank of India", "NSE", "EQ", 1, 0.05)
NIFTY_FUT = Instrument("43215", "NIFTY30DEC25FUT", "NIFTY", "NFO", "FUTIDX", 75, 0.1)
RELIANCE = Instrument("738561", "RELIANCE", "Reliance", "NSE", "EQ", 1, 0.05)
NIFTY = Instrument("256265", "NIFTY", "NIFTY 50", "NSE_INDEX", "INDEX", 1, 0.05)
#: What each adapter holds: the first instrument at every mode, the second at Depth.
HELD = ((LTP, 0), (QUOTE, 0), (DEPTH, 0), (DEPTH, 1))

# -- inputs ---------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
#: Text that trips JSON readers: nesting past the recursion limit, numbers past int's digits.
hostile_json = st.builds(lambda n: "[" * n + "]" * n, st.integers(900, 5000)) | st.builds(
    lambda n, wrap: wrap.replace("N", "1" * n),
    st.integers(4000, 6000),
    st.sampled_from(
        ["N", '{"errorCode": N}', '{"type": "error", "data": N}', '{"type": "message", "data": N}']
    ),
)


def objects(*keys: str, values: st.SearchStrategy = json_values) -> st.SearchStrategy[str]:
    """JSON objects whose keys are mostly ``keys``, as text."""
    fields = st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), values, max_size=5)
    return fields.map(json.dumps)


def sized(size: int, head: bytes = b"") -> st.SearchStrategy[bytes]:
    """``size`` bytes beginning with ``head``."""
    return st.binary(min_size=size - len(head), max_size=size - len(head)).map(lambda b: head + b)


def angel_route(index: int, mode: int) -> bytes:
    return angel.route_key(SmartStreamAdapter.key((SBIN, NIFTY_FUT)[index]), mode)


#: SmartStream frames: anything; a packet's size with any content; a held route's frame with
#: any values (any doubles: NaN and infinities too).
angel_frames = (
    st.binary(max_size=400)
    | st.sampled_from(sorted(angel.PACKETS.items())).flatmap(
        lambda item: sized(item[1].size, bytes([item[0]]))
    )
    | st.sampled_from(HELD).flatmap(
        lambda held: sized(angel.PACKETS[held[0]].size, angel_route(held[1], held[0]))
    )
)
angel_texts = (
    st.text(max_size=200)
    | st.just("pong")
    | objects("errorCode", "errorMessage", "correlationID")
    | hostile_json
)

kite_sizes = st.sampled_from([8, 28, 32, 44, 184]) | st.integers(0, 300)  # the kinds', or any
#: A Kite packet: any bytes of a kind's size (or any size), often a held instrument's token.
kite_packet = st.tuples(kite_sizes, st.sampled_from([738561, 256265, 0, 2**32 - 1])).flatmap(
    lambda size_token: sized(size_token[0], struct.pack(">I", size_token[1])[: size_token[0]])
)
kite_messages = st.binary(max_size=400) | st.lists(kite_packet, max_size=6).map(
    kite_packets.message
)
kite_texts = (
    st.text(max_size=200)
    | objects("type", "data")
    | st.tuples(st.sampled_from(["order", "error", "message", ""]), json_values).map(
        lambda kind_data: json.dumps({"type": kind_data[0], "data": kind_data[1]})
    )
    | hostile_json
)

#: Dhan packets: anything; a kind's header and size with any content; a held route's header
#: with any values (float32 NaN and infinities too).
dhan_packets = (
    st.binary(max_size=200)
    | st.sampled_from(sorted(dhan.PACKETS.items())).flatmap(
        lambda item: sized(item[1].size, dhan.HEADER.pack(item[0], item[1].size, 1, 3045))
    )
    | st.sampled_from(HELD).flatmap(
        lambda held: sized(
            dhan.PACKETS[dhan.MODE_PACKETS[held[0]]].size,
            dhan.route_key(*DhanAdapter.key((SBIN, NIFTY_FUT)[held[1]]), held[0]),
        )
    )
)

#: Noren messages: anything; a message of each kind for a held scrip (or another) with any
#: fields, most of them Noren's, of any values (any text: numbers, NaN, words).
noren_fields = st.sampled_from(["lp", "pc", "v", "o", "h", "l", "c", "ap", "ft", "pp", "bp1", "bq1",
                                "so5", "ltq", "tbq", "oi", "uc", "s", "emsg"])  # fmt: skip
noren_texts = (
    st.text(max_size=200)
    | st.tuples(
        st.fixed_dictionaries(
            {
                "t": st.sampled_from(["tk", "tf", "dk", "df", "ck", "ak", "uk", "hk", "om", ""]),
                "e": st.sampled_from(["NSE", "NFO", "BSE"]) | json_values,
                "tk": st.sampled_from(["3045", "43215", "1"]) | json_values,
            }
        ),
        st.dictionaries(noren_fields, st.text(max_size=12) | json_values, max_size=6),
    ).map(lambda parts: json.dumps({**parts[0], **parts[1]}))
    | objects("t", "e", "tk", "lp")
    | hostile_json
)

# -- the adapters, unconnected ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def runner():
    """A loop to run the adapters' handlers on (their fault logs time their summaries on it)."""
    with asyncio.Runner() as loop:
        yield loop


@pytest.fixture(scope="module")
def published():
    """Every tick the adapters publish, ``(topic, payload)``, through a real publisher."""
    ticks: list[tuple[bytes, bytes]] = []
    publisher = ZmqPublisher(port=0)
    publisher.tick_listener = lambda topic, payload: ticks.append((topic, payload))
    yield publisher, ticks
    publisher.close()


def holding(adapter, instruments):
    """``adapter`` holding :data:`HELD` of ``instruments``, as a subscription leaves it."""
    for mode, index in HELD:
        adapter._add_route(instruments[index], mode)
    return adapter


def angel_adapter(publisher) -> SmartStreamAdapter:
    secret = Secret("s")
    credentials = SmartStreamCredentials("C", secret, secret, secret)
    adapter = SmartStreamAdapter(1, "ws://127.0.0.1:9/", credentials, publisher=publisher)
    adapter._refusals["fp1"] = None  # a request under way
    return holding(adapter, (SBIN, NIFTY_FUT))


def kite_adapter(publisher) -> KiteAdapter:
    credentials = KiteCredentials(Secret("k"), Secret("t"))
    adapter = KiteAdapter(1, "ws://127.0.0.1:9/", credentials, publisher=publisher)
    return holding(adapter, (RELIANCE, NIFTY))


def dhan_adapter(publisher) -> DhanAdapter:
    credentials = DhanCredentials("1000000001", Secret("t"))
    adapter = DhanAdapter(1, "ws://127.0.0.1:9/", credentials, publisher=publisher)
    return holding(adapter, (SBIN, NIFTY_FUT))


def noren_adapter(publisher) -> NorenAdapter:
    credentials = NorenCredentials("FA1234", Secret("t"), "a")
    adapter = holding(NorenAdapter(1, "ws://127.0.0.1:9/", credentials, publisher=publisher),
                      (SBIN, NIFTY_FUT))  # fmt: skip
    adapter._held.update(
        {adapter.key(SBIN): (SBIN, LTP), adapter.key(NIFTY_FUT): (NIFTY_FUT, DEPTH)}
    )
    return adapter


def feed(runner, published, adapter, messages, *, good: bytes, topic: str) -> None:
    """Feed ``messages`` then ``good`` to ``adapter``, flushing after each as a read ends."""
    _, ticks = published
    ticks.clear()
    refusals = dict(adapter._refusals) if isinstance(adapter, SmartStreamAdapter) else None
    held_topics = {route[2] for route in adapter._routes.values()}

    async def garbage() -> None:
        for message in messages:
            adapter._on_message(message)
        dropped_unread = adapter.ticks_dropped
        adapter._flush()
        assert adapter._pending == []
        flushed_dropped = adapter.ticks_dropped - dropped_unread
        assert adapter.ticks_received == len(ticks) + flushed_dropped + adapter.ticks_shed
        assert {topic for topic, _ in ticks} <= held_topics  # a tick only where it was held

    runner.run(garbage())
    assert len(adapter.faults._counts) <= 5  # a count per kind of fault, however many faults
    if refusals is not None:
        assert adapter._refusals.keys() == refusals.keys()
    ticks.clear()

    async def good_tick() -> None:
        adapter._on_message(good)
        adapter._flush()

    runner.run(good_tick())
    assert [(sent.decode(), orjson.loads(tick)["ltp"]) for sent, tick in ticks] == [(topic, 812.35)]


@FUZZ
@given(st.lists(angel_frames | angel_texts, max_size=8))
def test_a_smartstream_adapter_survives_anything_and_ticks_on(runner, published, messages):
    adapter = angel_adapter(published[0])
    good = angel.encode(angel.Packet(QUOTE, 1, "3045", 1, 1_764_060_000_000, 81_235))
    feed(runner, published, adapter, messages, good=good, topic=tick_topic("NSE", "SBIN", QUOTE))


@FUZZ
@given(st.lists(kite_messages | kite_texts, max_size=8))
def test_a_kite_adapter_survives_anything_and_ticks_on(runner, published, messages):
    adapter = kite_adapter(published[0])
    good = kite_packets.message([kite_packets.pack_ltp(738561, 81_235)])
    feed(runner, published, adapter, messages, good=good, topic=tick_topic("NSE", "RELIANCE", LTP))


@FUZZ
@given(st.lists(dhan_packets | st.text(max_size=200), max_size=8))
def test_a_dhan_adapter_survives_anything_and_ticks_on(runner, published, messages):
    adapter = dhan_adapter(published[0])
    good = dhan.TICKER_PACKET.pack(2, 16, 1, 3045, 812.35, 1_764_080_000)
    feed(runner, published, adapter, messages, good=good, topic=tick_topic("NSE", "SBIN", LTP))


@FUZZ
@given(st.lists(noren_texts | st.binary(max_size=50), max_size=8))
def test_a_noren_adapter_survives_anything_and_ticks_on(runner, published, messages):
    adapter = noren_adapter(published[0])
    good = noren.tick_message("tk", "NSE|3045", {"lp": "812.35", "ft": "1764080000"})
    feed(runner, published, adapter, messages, good=good, topic=tick_topic("NSE", "SBIN", LTP))


# -- the codecs ------------------------------------------------------------------------------------


def finite_tick(tick: dict) -> None:
    assert math.isfinite(tick["ltp"]) and tick["mode"] in MODES


@FUZZ
@given(angel_frames)
def test_a_smartstream_frame_is_routed_decoded_and_normalised_or_refused(frame):
    try:
        route = angel.frame_route(frame)
    except angel.ProtocolError:
        with pytest.raises(angel.ProtocolError):
            angel.decode(frame)
        return
    assert route == frame[: 2 + angel.TOKEN_FIELD_SIZE]
    packet = angel.decode(frame)
    assert (packet.mode, packet.exchange_type) == (frame[0], frame[1])
    try:
        tick = angel.normalise(frame, "SBIN", "NSE")
    except (ValueError, OverflowError):  # a quantity no tick can carry: NaN or infinite
        assert not all(map(math.isfinite, (packet.total_buy_quantity, packet.total_sell_quantity)))
        return
    finite_tick(tick)


@FUZZ
@given(dhan_packets)
def test_a_dhan_packet_is_checked_and_normalised_or_refused(packet):
    try:
        code = dhan.check(packet)
    except dhan.ProtocolError:
        return
    assert len(packet) == packet[1] | packet[2] << 8 and code == packet[0]
    if code not in dhan.MODE_PACKETS.values():
        return
    try:
        tick = dhan.normalise(packet, "SBIN", "NSE", 1_764_060_000_000, 812.35)
    except (ValueError, OverflowError):  # a float32 NaN or infinity: no price a tick can carry
        assert not all(map(math.isfinite, dhan.PACKETS[code].unpack(packet)[4:]))
        return
    finite_tick(tick)
    orjson.dumps(tick)


@FUZZ
@given(kite_messages)
def test_a_kite_message_splits_into_packets_or_is_refused(message):
    try:
        packets = kite.split(message)
    except kite.ProtocolError:
        return
    assert kite_packets.message(packets) == message or (len(message) == 1 and packets == [])
    for packet in packets:
        try:
            token, mode = kite.token_and_mode(packet)
        except kite.ProtocolError:
            with pytest.raises(kite.ProtocolError):
                kite.normalise(packet, "X", "NSE", 1)
            continue
        assert 0 <= token <= kite.MAX_TOKEN and mode in MODES
        tick = kite.normalise(packet, "X", "NSE", 1_764_060_000_000)
        finite_tick(tick)
        orjson.dumps(tick)  # what the bus sends


@FUZZ
@given(st.lists(st.binary(max_size=200), max_size=5))
def test_kite_packets_framed_are_split_back(packets):
    assert kite.split(kite_packets.message(packets)) == packets


@FUZZ
@given(kite_texts)
def test_a_kite_text_is_read_or_refused(text):
    try:
        kind, _ = kite.parse_text(text)
    except kite.ProtocolError:
        return
    assert isinstance(kind, str)


@FUZZ
@given(noren_texts)
def test_a_noren_message_is_merged_and_normalised_or_refused(text):
    try:
        message = noren.parse(text)
        noren.tick_key(message)
    except noren.ProtocolError:
        return
    state = noren.merge({"lp": "812.35", "c": "800.00"}, message)
    for mode in MODES:
        try:
            tick = noren.normalise(state, mode, "SBIN", "NSE", 1_764_060_000_000)
        except noren.ProtocolError:
            continue
        finite_tick(tick)
        orjson.dumps(tick)


#: A request field's values: right ones, and wrong ones of every JSON type.
field_values = json_values | st.sampled_from(
    [0, 1, 2, 3, 13, 1.0, True, None, "1", "ltp", "full", [], [1], {"a": 1}]
)
tokens = st.lists(st.integers(-1, 2**33) | st.text(max_size=30), max_size=3)
#: SmartStream requests: a right shape with any leaves, any shape, or not JSON.
smartstream_requests = (
    st.fixed_dictionaries(
        {
            "correlationID": field_values,
            "action": st.sampled_from([0, 1]),
            "params": st.fixed_dictionaries(
                {
                    "mode": st.sampled_from(MODES),
                    "tokenList": st.lists(
                        st.fixed_dictionaries(
                            {"exchangeType": field_values, "tokens": tokens | field_values}
                        ),
                        min_size=1,
                        max_size=3,
                    ),
                }
            ),
        }
    ).map(json.dumps)
    | objects("correlationID", "action", "params", values=field_values)
    | hostile_json
    | st.text(max_size=100)
)
#: Kite requests, likewise.
kite_requests = (
    st.fixed_dictionaries(
        {
            "a": st.sampled_from([kite.SUBSCRIBE, kite.UNSUBSCRIBE, kite.SET_MODE]),
            "v": tokens | st.tuples(field_values, tokens | field_values).map(list),
        }
    ).map(json.dumps)
    | objects("a", "v", values=field_values)
    | hostile_json
    | st.text(max_size=100)
)


@FUZZ
@given(smartstream_requests)
def test_a_smartstream_request_is_parsed_or_refused(text):
    try:
        request = angel.parse_request(text)
    except angel.ProtocolError:
        return
    assert request.action in (angel.SUBSCRIBE, angel.UNSUBSCRIBE) and request.mode in MODES
    assert all(e in angel.VALID_EXCHANGE_TYPES and token for e, token in request.tokens)


#: Dhan requests, likewise.
dhan_requests = (
    st.fixed_dictionaries(
        {
            "RequestCode": st.sampled_from([12, 15, 16, 17, 18, 21, 22]) | field_values,
            "InstrumentCount": st.integers(0, 3) | field_values,
            "InstrumentList": st.lists(
                st.fixed_dictionaries(
                    {
                        "ExchangeSegment": st.sampled_from(sorted(dhan.SEGMENTS)) | field_values,
                        "SecurityId": tokens.map(lambda t: t[0] if t else "") | field_values,
                    }
                ),
                max_size=3,
            ),
        }
    ).map(json.dumps)
    | objects("RequestCode", "InstrumentCount", "InstrumentList", values=field_values)
    | hostile_json
    | st.text(max_size=100)
)


@FUZZ
@given(dhan_requests)
def test_a_dhan_request_is_parsed_or_refused(text):
    try:
        request = dhan.parse_request(text)
    except dhan.ProtocolError:
        return
    assert request.code in (12, 15, 16, 17, 18, 21, 22)
    assert all(
        s in dhan.SEGMENT_NAMES and 0 < i <= dhan.MAX_SECURITY_ID for s, i in request.instruments
    )


#: Noren client messages: each kind with keys or credentials of any shape, or anything.
noren_requests = (
    st.fixed_dictionaries(
        {
            "t": st.sampled_from(["c", "a", "t", "u", "d", "ud", "h"]) | field_values,
            "k": st.lists(
                st.sampled_from(["NSE|22", "NFO|48407", "XYZ|1", "NSE|", "|22", "NSE|2a"])
                | st.text(max_size=12),
                max_size=3,
            ).map("#".join)
            | field_values,
            "uid": field_values,
            "susertoken": field_values,
            "accesstoken": field_values,
        }
    ).map(json.dumps)
    | objects("t", "k", "uid", values=field_values)
    | hostile_json
    | st.text(max_size=100)
)


@FUZZ
@given(noren_requests)
def test_a_noren_request_is_parsed_or_refused(text):
    try:
        request = noren.parse_request(text)
    except noren.ProtocolError:
        return
    assert request.kind in ("c", "a", "t", "u", "d", "ud", "h")
    assert all(noren.split_key(key) for key in request.keys)
    assert bool(request.keys) == (request.kind in noren.FEED_REQUESTS)


@FUZZ
@given(kite_requests)
def test_a_kite_request_is_parsed_or_refused(text):
    try:
        request = kite.parse_request(text)
    except kite.ProtocolError:
        return
    assert request.mode in (None, *kite.FEEDPOOL_MODES)
    assert all(type(t) is int and 0 < t <= kite.MAX_TOKEN for t in request.tokens)
