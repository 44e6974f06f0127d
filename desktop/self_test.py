"""``FeedPool --self-test``: the app checked end to end, headless, without Qt.

It reads the backend with the app's own parts that need no Qt: the command line of
:mod:`desktop.link`, the ready line's type (:func:`backend.bus.messages.decode_line`), its
:class:`~desktop.link.bus_monitor.BusMonitor` and its :class:`~desktop.link.feed_client.FeedClient`.
Only the process is run with asyncio rather than the app's ``QProcess``.

The steps, each with a time limit:

1. keep out of the user's files: FeedPool's settings are dropped from the environment and the
   user dirs (settings, API key, watchlists, logs) are pointed at a temporary folder;
2. start the backend as the app starts it (:func:`desktop.link.command.backend_command`) on the
   bundled simulator, ports chosen by the system, and read its ready line;
3. listen to the bus's monitoring topics, and once they arrive, connect to the WebSocket API with
   the local API key and subscribe :data:`SYMBOLS` symbols of the bundled master, from every
   exchange and in every mode, spread over three pooled connections, as the app's feed does;
4. wait until every symbol has ticked, and until the pool's ``[POOL]`` log records have come over
   the bus (``SYS.LOG``);
5. export those records as the log pane's export does, and check the file: every record, the
   ``[POOL]`` lines, and no API key or broker credential;
6. stop the backend (SIGTERM) and check that it exits with status 0 (any status on Windows, where
   it can only be terminated).

Each step prints one line; a failed step prints ``self-test FAILED: <reason>`` and the exit
status is 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import tempfile
import time
from itertools import islice, zip_longest
from pathlib import Path
from typing import Any

import zmq
from msgspec import Struct

from backend.bus.messages import MalformedMessage, Ready, StartupFailure, decode_line
from backend.feed import LOG_TOPIC
from backend.instruments.master import Instrument, load_master
from backend.instruments.symbol_lists import WatchEntry
from backend.runtime.settings import Settings, config_dir, data_dir, load_settings, log_dir
from backend.security.api_key import api_key
from backend.simulator import SimulatorCredentials
from desktop.link.bus_monitor import BusMonitor
from desktop.link.command import backend_command
from desktop.link.feed_client import FeedClient, subscribe_requests
from desktop.logs.entry import LogEntry, entry_from_bus
from desktop.logs.export import write_log_export

SYMBOLS = 300
MODES = (1, 2, 3)  # LTP, Quote, Depth
#: The backend's settings for the test: three connections of 100 symbols (the simulator, like the
#: broker, allows three), so the symbols fill the whole pool.
BACKEND_SETTINGS = {
    "BROKER": "simulator",
    "WEBSOCKET_PORT": "0",
    "ZMQ_PORT": "0",
    "MAX_SYMBOLS_PER_WEBSOCKET": "100",
    "MAX_WEBSOCKET_CONNECTIONS": "3",
}
#: The ``[POOL]`` records the export must hold, one per connection each.
POOL_LINES = ("[POOL] Connection {n} started", "[POOL] Connection {n} full")
CONNECTIONS = range(1, 4)
#: Variables that place the user dirs (platformdirs): XDG on Linux and macOS, overrides on Windows.
USER_DIR_VARIABLES = (
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "XDG_CACHE_HOME",
    "WIN_PD_OVERRIDE_LOCAL_APPDATA",
    "WIN_PD_OVERRIDE_APPDATA",
)
READY_SECONDS = 30.0
BUS_SECONDS = 10.0
TICK_SECONDS = 30.0
LOG_SECONDS = 10.0
STOP_SECONDS = 5.0  # the backend stops within 2 s


class SelfTestFailed(Exception):
    """A step failed; the message says which and why."""


def say(text: str) -> None:
    print(text, flush=True)


def isolate(home: Path) -> None:
    """Point this process, and so the backend it starts, at user dirs under ``home`` and at the
    test's settings only."""
    for field in dataclasses.fields(Settings):
        os.environ.pop(field.name, None)
    os.environ.update({name: str(home / name.lower()) for name in USER_DIR_VARIABLES})
    os.environ.update(BACKEND_SETTINGS)
    for directory in (config_dir(), data_dir(), log_dir()):
        if not directory.is_relative_to(home):
            raise SelfTestFailed(f"cannot keep the test out of the user dir {directory}")


def pool_lines() -> list[str]:
    """The start of each ``[POOL]`` record the test expects."""
    return [line.format(n=n) for n in CONNECTIONS for line in POOL_LINES]


def pick_symbols(count: int) -> list[Instrument]:
    """``count`` instruments of the bundled master, taken from each exchange in turn."""
    by_exchange: dict[str, list[Instrument]] = {}
    for instrument in load_master():
        by_exchange.setdefault(instrument.exchange, []).append(instrument)
    rounds = zip_longest(*by_exchange.values())
    return list(islice((i for row in rounds for i in row if i is not None), count))


def watch_entries(instruments: list[Instrument]) -> list[WatchEntry]:
    """The instruments as watchlist entries, dealt over :data:`MODES` in turn."""
    return [
        WatchEntry(i.symbol, i.exchange, MODES[n % len(MODES)]) for n, i in enumerate(instruments)
    ]


class BackendRun:
    """The backend subprocess, started as the app starts it; its stderr goes to a file."""

    def __init__(self, process: asyncio.subprocess.Process, stderr: Path) -> None:
        self.process = process
        self.stderr = stderr

    @classmethod
    async def start(cls, home: Path) -> BackendRun:
        program, arguments = backend_command(os.getpid())
        stderr = home / "backend-stderr.log"
        with stderr.open("wb") as output:
            process = await asyncio.create_subprocess_exec(
                program,
                *arguments,
                cwd=home,  # no .env but the test's
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=output,
            )
        return cls(process, stderr)

    def last_output(self) -> str:
        """The backend's last line on stderr, for a failure's reason."""
        lines = self.stderr.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return lines[-1] if lines else "it wrote nothing on stderr"

    async def ready(self) -> Ready:
        """Where the backend serves, from its ready line."""
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), READY_SECONDS)
        except TimeoutError:
            raise SelfTestFailed(f"the backend was not ready within {READY_SECONDS:g} s") from None
        if not line:
            code = await self.process.wait()
            raise SelfTestFailed(
                f"the backend exited with status {code} before it was ready: {self.last_output()}"
            )
        try:
            event = decode_line(line)
        except MalformedMessage as exc:
            raise SelfTestFailed(f"the backend printed a {exc}") from None
        if isinstance(event, StartupFailure):
            raise SelfTestFailed(f"the backend cannot start: {event.message} ({event.code})")
        if not isinstance(event, Ready):
            raise SelfTestFailed(f"the backend's first line is not its ready line: {line!r}")
        return event

    async def stop(self) -> int:
        """Terminate the backend (SIGTERM on POSIX); its exit status, which must be 0 there."""
        self.process.terminate()
        try:
            code = await asyncio.wait_for(self.process.wait(), STOP_SECONDS)
        except TimeoutError:
            raise SelfTestFailed(f"the backend did not stop within {STOP_SECONDS:g} s") from None
        if os.name == "posix" and code != 0:
            raise SelfTestFailed(
                f"the backend exited with status {code} when stopped: {self.last_output()}"
            )
        return code

    async def end(self) -> None:
        """Kill the backend if it still runs, and reap it."""
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


class BusRecords:
    """The bus's monitoring topics, read by the app's :class:`BusMonitor`; keeps ``SYS.LOG``."""

    def __init__(self, endpoint: str) -> None:
        self.records: list[LogEntry] = []
        #: A first message has arrived: the subscription is in place.
        self.live = asyncio.Event()
        self._logged = asyncio.Event()
        self._monitor = BusMonitor(self._take)
        self._monitor.start(endpoint)

    def _take(self, topic: str, message: Struct) -> None:
        self.live.set()
        if topic == LOG_TOPIC:
            self.records.append(entry_from_bus(message))
            self._logged.set()

    def missing_pool_lines(self) -> list[str]:
        """The expected ``[POOL]`` lines not yet received."""
        messages = [record.message for record in self.records]
        return [line for line in pool_lines() if not any(m.startswith(line) for m in messages)]

    async def wait_for_pool_lines(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LOG_SECONDS):
                while self.missing_pool_lines():
                    self._logged.clear()
                    await self._logged.wait()
        if missing := self.missing_pool_lines():
            raise SelfTestFailed(f"no {missing[0]!r} record on the bus within {LOG_SECONDS:g} s")

    def close(self) -> None:
        self._monitor.stop()


class FeedWatch:
    """The app's :class:`FeedClient` subscribing ``entries``; notes which have ticked and how
    many requests are still unanswered."""

    def __init__(self, entries: list[WatchEntry]) -> None:
        self.silent = {entry.key for entry in entries}
        self.unanswered = len(subscribe_requests(entries))
        self.refused: dict[str, Any] | None = None
        self._progress = asyncio.Event()
        self.client = FeedClient(self._take)
        self.client.subscribe(entries)

    def _take(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "market_data":
            self.silent.discard((message.get("symbol"), message.get("exchange")))
        elif kind == "subscribe" and message.get("status") == "success":
            self.unanswered -= 1
        else:
            self.refused = message
        self._progress.set()

    async def until_ticked(self, backend: Ready, key: str) -> None:
        """Connect to ``backend``; return once each entry has ticked and every request is
        answered."""
        self.client.connect_to(backend.ws, key)
        try:
            async with asyncio.timeout(TICK_SECONDS):
                while self.refused is None and (self.silent or self.unanswered):
                    self._progress.clear()
                    await self._progress.wait()
        except TimeoutError:
            if self.client.refusal:
                raise SelfTestFailed(self.client.refusal) from None
            symbol, exchange = next(iter(self.silent), ("-", "-"))
            raise SelfTestFailed(
                f"{len(self.silent)} symbols (e.g. {exchange}:{symbol}) had no tick"
                f" and {self.unanswered} requests no reply within {TICK_SECONDS:g} s"
            ) from None
        if self.refused is not None:
            raise SelfTestFailed(f"the backend refused a subscription: {self.refused}")

    def close(self) -> None:
        self.client.close()


def check_export(records: list[LogEntry], path: Path, secrets: list[str]) -> int:
    """Export ``records`` to ``path`` and check the file; the number of lines."""
    written = write_log_export(records, path)
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    if written != len(records) or len(lines) != len(records):
        raise SelfTestFailed(f"{path.name} holds {len(lines)} lines for {len(records)} records")
    if missing := [line for line in pool_lines() if line not in text]:
        raise SelfTestFailed(f"{path.name} holds no {missing[0]!r} line")
    if any(secret in text for secret in secrets):
        raise SelfTestFailed(f"{path.name} holds an API key or a broker credential")
    return len(lines)


async def run(home: Path) -> None:
    """Every step, printing a line for each; :class:`SelfTestFailed` says which failed."""
    started = time.monotonic()

    def step(text: str) -> None:
        say(f"{time.monotonic() - started:6.2f} s  {text}")

    isolate(home)
    backend = await BackendRun.start(home)
    try:
        ready = await backend.ready()
        step(f"backend ready: {ready.ws}, bus {ready.zmq}")
        bus = BusRecords(ready.zmq)
        try:
            try:
                await asyncio.wait_for(bus.live.wait(), BUS_SECONDS)
            except TimeoutError:
                raise SelfTestFailed(f"nothing on the bus within {BUS_SECONDS:g} s") from None
            key = api_key(load_settings(env_file=home / ".env")).reveal()
            instruments = pick_symbols(SYMBOLS)
            feed = FeedWatch(watch_entries(instruments))
            try:
                await feed.until_ticked(ready, key)
                exchanges = len({i.exchange for i in instruments})
                step(f"{len(instruments)} symbols from {exchanges} exchanges all ticked")
                await bus.wait_for_pool_lines()
            finally:
                feed.close()
            broker = SimulatorCredentials()
            secrets = [key, broker.api_key, broker.feed_token, broker.auth_token]
            count = check_export(bus.records, home / "export.log", secrets)
            step(f"{count} log records exported and checked")
        finally:
            bus.close()
        code = await backend.stop()
        step(f"backend stopped, exit status {code}")
    finally:
        await backend.end()


def main() -> int:
    """Run the self-test in a temporary folder; 0 if it passed, 1 with the reason if not."""
    with tempfile.TemporaryDirectory(
        prefix="feedpool-self-test-", ignore_cleanup_errors=True
    ) as home:
        try:
            asyncio.run(run(Path(home)))
        except SelfTestFailed as exc:
            say(f"self-test FAILED: {exc}")
            return 1
        except (OSError, ValueError, zmq.ZMQError) as exc:
            say(f"self-test FAILED: {type(exc).__name__}: {exc}")
            return 1
    say("self-test passed")
    return 0
