"""The client API's limits: what a client may send, how often a wrong key may be tried, and how
many connections one address may open; each answered with a clear error, counted in the stats
and logged a line an interval, never a traceback."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest
from proxy_client import API_KEY, Client, eventually, start_proxy

from backend.proxy import replies
from backend.proxy.messages import MAX_DEPTH, MAX_NUMBER_DIGITS, MAX_REQUEST_ID_LENGTH
from backend.runtime.settings import SettingsError, load_settings

#: Another loopback address: on Linux the whole of 127.0.0.0/8 reaches a server on 127.0.0.1.
ELSEWHERE = "127.0.0.2"
FAULT_INTERVAL = 0.5
#: How much earlier than asked the event loop may run a timer (its clock's resolution).
SLACK = 0.01
TOO_DEEP = f"Invalid JSON message: nested more than {MAX_DEPTH} deep"
TOO_LONG = f"Invalid JSON message: a number of more than {MAX_NUMBER_DIGITS} digits"
BAD_ID = f"request_id must be a string of at most {MAX_REQUEST_ID_LENGTH} characters or a number"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.fixture
async def proxy(make_pool, caplog):
    """A proxy without a broker (nothing here subscribes), logging faults every 0.5 s."""
    caplog.set_level(logging.INFO, logger="feedpool.proxy")
    started = []

    async def start(**options):
        options.setdefault("fault_interval", FAULT_INTERVAL)
        pool = make_pool(None, url="ws://127.0.0.1:9")  # never dialled: nothing subscribes
        started.append(await start_proxy(pool, **options))
        return started[-1]

    yield start
    for each in started:
        await each.close()


@pytest.fixture
async def clients():
    """Opens clients, and closes them after the test."""
    opened: list[Client] = []

    async def open_one(url: str, api_key: str | None = API_KEY, **options) -> Client:
        opened.append(await Client.open(url, api_key, **options))
        return opened[-1]

    yield open_one
    for each in opened:
        await each.close()


def proxy_lines(caplog, *, level: int = logging.WARNING) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "feedpool.proxy" and r.levelno >= level]


def no_tracebacks(caplog) -> None:
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


async def reported(caplog, kind: str, faults: int) -> None:
    """Wait until the lines logged for faults of ``kind`` tell of ``faults`` (the first line of
    one, each later line of its count), then check they came at most a line an interval."""

    def lines() -> list[logging.LogRecord]:
        return [r for r in proxy_lines(caplog) if f"{kind}: " in r.getMessage()]

    def told() -> int:
        counts = [re.search(r": (\d+) more like it in the last", r.getMessage()) for r in lines()]
        return sum(int(count[1]) if count else 1 for count in counts)

    await eventually(lambda: told() == faults, within=10)
    found = lines()
    assert len(found) <= 2 + (found[-1].created - found[0].created) / FAULT_INTERVAL


HOSTILE = [
    ('{"action": "ping", "timestamp": ' + "1" * 5000 + "}", "INVALID_JSON", TOO_LONG),
    ('{"action": "ping", "timestamp": -' + "9" * 5000 + "}", "INVALID_JSON", TOO_LONG),
    ('{"action": "ping", "timestamp": 1.' + "5" * 5000 + "}", "INVALID_JSON", TOO_LONG),
    ('{"action": "ping", "request_id": ' + nested(980) + "}", "INVALID_JSON", TOO_DEEP),
    ('{"action": "fly", "mode": ' + nested(500) + "}", "INVALID_JSON", TOO_DEEP),
    ("[" * 100_000, "INVALID_JSON", TOO_DEEP),
    ('{"action": "ping", "request_id": {"a": [1]}}', "INVALID_PARAMETERS", BAD_ID),
    ('{"action": "ping", "request_id": [1]}', "INVALID_PARAMETERS", BAD_ID),
    ('{"action": "ping", "request_id": 1e999}', "INVALID_PARAMETERS", BAD_ID),
    ('{"action": "ping", "request_id": NaN}', "INVALID_PARAMETERS", BAD_ID),
    (json.dumps({"action": "ping", "request_id": "x" * 257}), "INVALID_PARAMETERS", BAD_ID),
]


@pytest.mark.parametrize("case", HOSTILE, ids=range(len(HOSTILE)))
async def test_a_message_that_cannot_be_parsed_or_answered_gets_a_typed_error(
    proxy, clients, caplog, case
):
    frame, code, message = case
    served = await proxy(fault_interval=60)
    hostile = await clients(served.url, api_key=None)
    for _ in range(200):
        await hostile.send(frame)
    answers = [await hostile.reply() for _ in range(200)]
    assert all(
        answer == {"type": "error", "status": "error", "code": code, "message": message}
        for answer in answers
    ), answers[0]
    assert (await hostile.request({"action": "authenticate", "api_key": API_KEY}))[
        "status"
    ] == "success"  # the socket is still open
    no_tracebacks(caplog)
    assert len(proxy_lines(caplog)) <= 1  # one line; the count comes at the interval's end
    expected = 200 if code == "INVALID_JSON" else 0
    assert served.stats().malformed_messages == expected


async def test_the_bounds_are_exact_values_at_them_are_answered(proxy, clients):
    served = await proxy()
    client = await clients(served.url)
    longest = 10**MAX_NUMBER_DIGITS - 1
    for request_id in ("r" * MAX_REQUEST_ID_LENGTH, 7, -2.5, longest, -longest):
        pong = await client.request({"action": "ping", "request_id": request_id})
        assert pong["type"] == "pong"
        bad = await client.request({"action": "fly", "request_id": request_id})
        assert (bad["code"], bad["request_id"]) == ("INVALID_ACTION", request_id)
    deepest = nested(MAX_DEPTH - 1)  # in the message, itself one level deep
    reply = await client.request('{"action": "ping", "timestamp": ' + deepest + "}")
    assert reply["client_timestamp"] == json.loads(deepest)
    # One past each bound is refused.
    for past, said in (
        ('{"action": "ping", "timestamp": ' + nested(MAX_DEPTH) + "}", TOO_DEEP),
        ('{"action": "ping", "timestamp": ' + str(longest + 1) + "}", TOO_LONG),
        (json.dumps({"action": "ping", "request_id": "r" * (MAX_REQUEST_ID_LENGTH + 1)}), BAD_ID),
    ):
        assert (await client.request(past))["message"] == said


async def test_an_unexpected_failure_is_one_server_error_reply_and_a_line_an_interval(
    proxy, clients, caplog, monkeypatch
):
    served = await proxy()
    client = await clients(served.url)

    def broken(client_timestamp):
        raise KeyError("boom")

    monkeypatch.setattr(replies, "pong", broken)
    monkeypatch.setattr(replies, "broker_info", lambda *_: {"unencodable": {1, 2}})
    for action in ["ping", "get_broker_info"] * 100:
        await client.send({"action": action, "request_id": "r1"})
    for _ in range(200):
        assert await client.reply() == {
            "type": "error",
            "status": "error",
            "code": "SERVER_ERROR",
            "message": "Internal server error",
            "request_id": "r1",
        }
    assert (await client.request({"action": "get_supported_brokers"}))["status"] == "success"
    no_tracebacks(caplog)
    first = proxy_lines(caplog)[0].getMessage()
    assert "request failed" in first and "KeyError: 'boom'" in first
    await reported(caplog, "request failed", 200)
    assert served.stats().server_errors == 200


async def test_wrong_keys_make_a_line_and_a_count_not_a_line_each(proxy, clients, caplog):
    served = await proxy(auth_failures_before_delay=1000)

    async def wrong_key() -> None:
        client = await clients(served.url, api_key=None)
        reply = await client.request({"action": "authenticate", "api_key": "wrong"})
        assert reply["code"] == "AUTHENTICATION_ERROR"
        await client.close()

    for _ in range(10):
        await asyncio.gather(*(wrong_key() for _ in range(20)))
    no_tracebacks(caplog)
    await reported(caplog, "authentication failed", 200)
    assert "wrong" not in caplog.text
    assert served.stats().failed_authentications == 200


async def test_wrong_keys_from_one_address_slow_it_down_and_not_the_others(proxy, clients):
    served = await proxy(auth_failures_before_delay=2, first_auth_delay=1.0)
    guesser = await clients(served.url, api_key=None, source=ELSEWHERE)
    wrong = {"action": "authenticate", "api_key": "wrong"}
    loop = asyncio.get_running_loop()
    slowed = "Invalid API key; too many failed authentications from this address: each now waits"
    for said in ("Invalid API key", f"{slowed} 1 s"):  # the free failures are answered at once
        start = loop.time()
        reply = await guesser.request(wrong)
        assert (reply["message"], loop.time() - start < 1.0) == (said, True)
    start = loop.time()
    await guesser.send(wrong)
    await clients(served.url)  # the right key from 127.0.0.1 is answered meanwhile
    assert guesser.replies.empty()
    reply = await guesser.reply()
    assert loop.time() - start >= 1.0 - SLACK
    assert reply["code"] == "AUTHENTICATION_ERROR"
    assert reply["message"] == f"{slowed} 2 s"
    # Another client from that address waits too, even with the right key, which then clears
    # the address's failures.
    start = loop.time()
    await clients(served.url, source=ELSEWHERE)
    assert loop.time() - start >= 2.0 - SLACK
    start = loop.time()
    reply = await guesser.request(wrong)
    assert (reply["message"], loop.time() - start < 1.0) == ("Invalid API key", True)
    stats = served.stats()
    assert (stats.failed_authentications, stats.delayed_authentications) == (4, 2)


async def test_connections_past_the_limit_of_an_address_are_refused(proxy, clients, caplog):
    served = await proxy(max_clients_per_address=3)
    crowd = [await clients(served.url, api_key=None, source=ELSEWHERE) for _ in range(3)]
    for _ in range(5):
        refused = await clients(served.url, api_key=None, source=ELSEWHERE)
        assert await refused.closed(within=5) == (
            1013,
            f"too many connections from {ELSEWHERE} (limit 3)",
        )
    assert len(served.sessions) == 3
    neighbour = await clients(served.url)  # another address connects all the same
    assert (await neighbour.request({"action": "ping"}))["type"] == "pong"
    await crowd[0].close()
    await eventually(lambda: len(served.sessions) == 3)
    await clients(served.url, source=ELSEWHERE)  # a place freed is taken
    await reported(caplog, "refused a connection", 5)
    assert served.stats().refused_connections == 5


def test_the_limits_are_settings(tmp_path):
    none = tmp_path / "absent"
    defaults = load_settings({}, none, none)
    assert (defaults.MAX_CLIENTS_PER_ADDRESS, defaults.AUTH_FAILURES_BEFORE_DELAY) == (64, 5)
    changed = load_settings(
        {"MAX_CLIENTS_PER_ADDRESS": "8", "AUTH_FAILURES_BEFORE_DELAY": "3"}, none, none
    )
    assert (changed.MAX_CLIENTS_PER_ADDRESS, changed.AUTH_FAILURES_BEFORE_DELAY) == (8, 3)
    for name in ("MAX_CLIENTS_PER_ADDRESS", "AUTH_FAILURES_BEFORE_DELAY"):
        with pytest.raises(SettingsError, match=name):
            load_settings({name: "0"}, none, none)
