"""Every message the backend publishes or prints matches its type in ``backend.bus.messages``,
field for field, and ``docs/bus.md`` is what those types render.

The backend runs for real on its bundled simulator (as each broker), with a client subscribing
symbols in every mode through the client API; a SUB socket on its bus decodes each message it
receives strictly: decoded with its topic's type and encoded again, it must give back the JSON
that came, so a field the type does not know, or lacks, fails the test.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import msgspec
import pytest
from backend_process import allow_bus_client
from proxy_client import BusMonitor, Client

from backend.bus.document import COMMAND, render
from backend.bus.messages import (
    TICK_TYPES,
    BackendHealth,
    BusClient,
    ClientsStats,
    LogRecord,
    MalformedMessage,
    Ready,
    StartupFailure,
    decode,
    decode_line,
)
from backend.feed import (
    CLIENTS_TOPIC,
    DEPTH,
    HEALTH_TOPIC,
    LOG_TOPIC,
    LTP,
    POOL_TOPIC,
    QUOTE,
    TICK_FIELDS,
    tick_topic,
)

ROOT = Path(__file__).resolve().parent.parent
WITHIN = 30.0
#: What the client holds in each mode: equities, indices and a currency future, whose packets
#: differ.
HELD = {
    LTP: [("SBIN", "NSE"), ("NIFTY", "NSE_INDEX")],
    QUOTE: [("INFY", "NSE"), ("BANKNIFTY", "NSE_INDEX")],
    DEPTH: [("TCS", "NSE"), ("FINNIFTY", "NSE_INDEX"), ("USDINR29DEC26FUT", "CDS")],
}
#: The tick topics of what the client holds, and their modes.
TICK_TOPICS = {tick_topic(e, s, mode): mode for mode, held in HELD.items() for s, e in held}


def strictly(topic: str, payload: dict) -> msgspec.Struct:
    """``payload`` (as it came on ``topic``) decoded with its type, which must give it back
    whole when encoded again."""
    message = decode(topic, json.dumps(payload).encode())
    assert message is not None, f"{topic} has no type"
    assert json.loads(msgspec.json.encode(message)) == payload, f"{topic}: {payload} vs {message}"
    return message


def strict_line(line: dict) -> msgspec.Struct:
    """A stdout line of the backend decoded with its type, which must give it back whole."""
    event = decode_line(json.dumps(line))
    assert json.loads(msgspec.json.encode(event)) == line, f"{line} vs {event}"
    return event


@pytest.mark.parametrize("broker", ["angel", "zerodha", "dhan"])
async def test_every_message_the_backend_publishes_matches_its_type(backends, broker):
    backend, ready_line = await backends(SIMULATOR_BROKER=broker)
    ready = strict_line(ready_line)
    assert isinstance(ready, Ready) and ready.pid == backend.process.pid
    # The first message of each kind the test waits for: each tick topic, and the others by type.
    seen: dict[str, msgspec.Struct] = {}
    kinds = {*TICK_TOPICS, "ClientsStats", "LogRecord", "ConnectionHealth", "PoolStats"}

    def take(topic: str, payload: dict) -> bool:
        message = strictly(topic, payload)
        if topic in TICK_TOPICS:
            assert type(message) is TICK_TYPES[TICK_TOPICS[topic]]
            assert message.mode == TICK_TOPICS[topic]
            seen.setdefault(topic, message)
        elif isinstance(message, ClientsStats):
            if message.sessions and message.sessions[0].subscriptions == len(TICK_TOPICS):
                seen.setdefault("ClientsStats", message)
        elif not isinstance(message, LogRecord) or message.connection is not None:
            seen.setdefault(type(message).__name__, message)
        return kinds <= set(seen)

    def stopped(topic: str, payload: dict) -> bool:
        message = strictly(topic, payload)
        return isinstance(message, BackendHealth) and seen.setdefault("stopped", message) is message

    bus = BusMonitor(ready.zmq, prefix="")
    client = None
    try:
        await bus.until(lambda topic, payload: topic == POOL_TOPIC, WITHIN)  # joined
        client = await Client.open(ready.ws)
        for mode, held in HELD.items():
            assert (await client.subscribe(held, mode=mode))["status"] == "success"
        await bus.until(take, WITHIN)
        backend.process.send_signal(signal.SIGTERM)
        await bus.until(stopped, WITHIN)
    finally:
        bus.close()
        if client is not None:
            await client.close()
    assert await backend.exited() == 0
    depth = seen[tick_topic("NSE", "TCS", DEPTH)].depth
    assert len(depth.buy) == len(depth.sell) == 5 and depth.buy[0].quantity > 0
    assert seen["ConnectionHealth"].connection == seen["LogRecord"].connection == 1
    assert seen["PoolStats"].broker == "simulator" and seen["PoolStats"].connections
    down = seen["stopped"]
    assert (down.state, down.reason, down.ws, down.zmq) == ("down", "stopped", ready.ws, ready.zmq)


async def test_the_error_line_and_the_bus_client_line_match_their_types(backends):
    backend, line = await backends(MAX_WEBSOCKET_CONNECTIONS="0")
    failure = strict_line(line)
    assert isinstance(failure, StartupFailure) and failure.code == "INVALID_SETTING"
    assert await backend.exited() == 2
    status, line, _ = await allow_bus_client("desk")
    allowed = strict_line(line)
    assert status == 0 and isinstance(allowed, BusClient) and allowed.name == "desk"


POOL = {
    "time": 1764069731.25,
    "broker": "simulator",
    "user_id": "FEEDPOOL",
    "max_connections": 3,
    "max_symbols_per_connection": 1000,
    "capacity": 3000,
    "total_symbols": 1,
    "active_connections": 1,
    "peak_symbols": 1,
    "peak_connections": 1,
    "utilisation_percent": 0.03,
    "session_problem": "",
    "connections": [
        {
            "index": 1,
            "symbols": 1,
            "capacity": 1000,
            "state": "connected",
            "reason": "",
            "ticks_per_second": 5.0,
            "ticks": 12,
            "ticks_shed": 0,
            "ticks_dropped": 0,
            "feeds_healed": 0,
            "last_tick_age_ms": 20,
            "peak_symbols": 1,
        }
    ],
}


@pytest.mark.parametrize(
    ("topic", "payload", "problem"),
    [
        (
            POOL_TOPIC,
            {**POOL, "connections": [{**POOL["connections"][0], "symbols": "many"}]},
            "Expected `int`, got `str` - at `$.connections[0].symbols`",
        ),
        (POOL_TOPIC, {**POOL, "capacity": None}, "Expected `int`, got `null` - at `$.capacity`"),
        (
            HEALTH_TOPIC,
            {"component": "connection", "connection": 1, "state": "connected", "time": 1.0},
            "Object missing required field `reason`",
        ),
        (
            HEALTH_TOPIC,
            {"component": "gateway", "state": "ready", "reason": "", "time": 1.0},
            "Invalid value 'gateway' - at `$.component`",
        ),
        (
            CLIENTS_TOPIC,
            {"sessions": [{"symbols": [["SBIN", "NSE"]]}]},
            "Expected `array` of length 3 - at `$.sessions[0].symbols[0]`",
        ),
        (LOG_TOPIC, [1, 2], "Expected `object`, got `array`"),
    ],
    ids=["field-type", "null", "missing-field", "unknown-shape", "holding", "not-object"],
)
def test_a_payload_that_does_not_match_names_its_topic_and_field(topic, payload, problem):
    with pytest.raises(MalformedMessage) as raised:
        decode(topic, json.dumps(payload).encode())
    assert str(raised.value) == f"malformed {topic} message: {problem}"


def test_a_tick_of_a_wrong_type_names_the_nested_field():
    tick = {f: 0 for f in TICK_FIELDS[DEPTH]} | {"symbol": "SBIN", "exchange": "NSE", "mode": 3}
    level = {"price": 801.5, "quantity": 10, "orders": 1}
    tick["depth"] = {"buy": [level, {**level, "price": "801.5"}], "sell": [level]}
    with pytest.raises(MalformedMessage, match=r"got `str` - at `\$\.depth\.buy\[1\]\.price`$"):
        decode(tick_topic("NSE", "SBIN", DEPTH), json.dumps(tick).encode())


def test_topics_without_a_type_and_lines_without_an_event():
    assert decode("SYS.PROBE", b"{}") is None
    assert decode_line("Traceback (most recent call last):") is None
    assert decode_line('{"ws": "ws://127.0.0.1:1"}') is None
    with pytest.raises(MalformedMessage, match=r"^malformed 'ready' line: .* field `ws`$"):
        decode_line('{"event": "ready", "zmq": "tcp://127.0.0.1:1"}')


def test_each_modes_tick_type_has_the_fields_of_that_mode_in_order():
    for mode, kind in TICK_TYPES.items():
        assert tuple(field.name for field in msgspec.structs.fields(kind)) == TICK_FIELDS[mode]


def test_docs_bus_md_is_what_the_types_render():
    assert (ROOT / "docs" / "bus.md").read_text(encoding="utf-8") == render(), (
        f"docs/bus.md differs from the message types; regenerate it: {COMMAND}"
    )
