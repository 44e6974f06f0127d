"""The legacy official Noren client judges the simulator: QuickAuth, then the ``t:"c"`` feed.

``NorenRestApiPy`` 0.0.22 installs the same module file as ``NorenRestApiOAuth`` (the dev extra's
client), so one environment holds one of them: ``make`` installs the legacy one on its own into
``.venv/noren-legacy``, and it runs here in a process of its own with that folder first on its
path, pointed at the simulator with ``NorenApi(host=..., websocket=...)`` and otherwise
unchanged.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from pathlib import Path

import pyotp

from backend.simulator import SimulatorCredentials

LEGACY = Path(sys.prefix) / "noren-legacy"
ACCOUNT = SimulatorCredentials()

#: Logs in with QuickAuth (a wrong password first), opens the feed, subscribes the tokens given,
#: and prints one JSON line per event until every token has its snapshot and two updates.
CLIENT = textwrap.dedent(
    """
    import json, sys, threading
    from NorenRestApiPy.NorenApi import NorenApi

    rest, websocket, user, password, totp, vendor, secret, *tokens = sys.argv[1:]
    api = NorenApi(host=rest, websocket=websocket)
    print(json.dumps({"event": "wrong", "answer": api.login(
        userid=user, password="wrong", twoFA=totp, vendor_code=vendor, api_secret=secret,
        imei="abc1234")}), flush=True)
    answer = api.login(userid=user, password=password, twoFA=totp, vendor_code=vendor,
                       api_secret=secret, imei="abc1234")
    print(json.dumps({"event": "login", "answer": answer}), flush=True)
    opened, done, seen = threading.Event(), threading.Event(), {}

    def feed(message):
        print(json.dumps({"event": "feed", "message": message}), flush=True)
        seen[message["tk"]] = seen.get(message["tk"], 0) + 1
        if len(seen) == len(tokens) and min(seen.values()) >= 3:
            done.set()

    api.start_websocket(subscribe_callback=feed, socket_open_callback=opened.set,
                        socket_error_callback=lambda error: print(json.dumps(
                            {"event": "error", "error": str(error)}), flush=True))
    opened.wait(10)
    print(json.dumps({"event": "open", "opened": opened.is_set()}), flush=True)
    api.subscribe(["NSE|" + token for token in tokens])
    print(json.dumps({"event": "done", "all": done.wait(15)}), flush=True)
    """
)


async def run_client(simulator, tokens: list[str]) -> list[dict]:
    """The legacy client's events against ``simulator``."""
    assert (LEGACY / "NorenRestApiPy" / "NorenApi.py").is_file(), (
        f"{LEGACY} holds no NorenRestApiPy: make installs it there (see the Makefile)"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLIENT,
        f"{simulator.rest_url}/NorenWClientTP",
        simulator.url,
        ACCOUNT.client_code,
        ACCOUNT.password,
        pyotp.TOTP(ACCOUNT.totp_secret).now(),
        ACCOUNT.vendor_code,
        ACCOUNT.api_secret,
        *tokens,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(LEGACY)},
    )
    out, _ = await asyncio.wait_for(process.communicate(), 40)
    return [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]


async def test_the_legacy_client_logs_in_with_quickauth_and_reads_the_feed(make_simulator):
    simulator = await make_simulator(broker="zebu", ticks_per_second=5, max_tokens=None)
    tokens = [
        instrument.token
        for instrument in simulator.instruments.values()
        if instrument.exchange == "NSE" and instrument.symbol in ("SBIN", "INFY")
    ]
    events = await run_client(simulator, tokens)
    by_event = {e["event"]: e for e in events}

    assert by_event["wrong"]["answer"] is None  # Not_Ok: the client returns None
    login = by_event["login"]["answer"]
    assert login["stat"] == "Ok" and login["susertoken"] and login["actid"] == ACCOUNT.client_code
    assert by_event["open"]["opened"], events  # ck with s == "OK" to its t:"c"
    assert by_event["done"]["all"], events
    feed = [e["message"] for e in events if e["event"] == "feed"]
    for token in tokens:
        mine = [m for m in feed if m["tk"] == token]
        snapshot, updates = mine[0], mine[1:]
        assert snapshot["t"] == "tk" and snapshot["e"] == "NSE"
        assert {"lp", "o", "h", "l", "c", "v", "pp", "ti", "ls", "ft"} <= set(snapshot)
        assert all(isinstance(value, str) for value in snapshot.values())
        assert updates and all(u["t"] == "tf" for u in updates)
        # Updates carry what changed, not the snapshot's every field.
        assert all(len(u) < len(snapshot) and {"t", "e", "tk"} <= set(u) for u in updates)
