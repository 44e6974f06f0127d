"""The soak's handles on its processes: the clients, the backend's supervisor, the simulator, and
the backend's own figures.

- :class:`ClientHost` runs ``bench/soak_client.py`` and sends it commands, each answered by its
  ``ref``; the connections the server closed are kept in :attr:`ClientHost.disconnected`.
- :class:`Supervisor` runs ``bench/soak_supervisor.py`` (the desktop app's supervisor without a
  window) and hands on each run's ready line.
- :func:`simulator_command` commands the simulator (``bench/overload.py`` starts it).
- :func:`backend_figures`: the backend's RSS, open files and threads from ``/proc``, and its
  asyncio tasks from ``SYS.CLIENTS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import psutil
from run import API_KEY, BusCounter

from backend.bus.messages import Ready

HERE = Path(__file__).parent
LINE_LIMIT = 2**24
START_SECONDS = 30.0
#: Settings of the developer's environment that the soak's backend must not inherit.
SETTING_PREFIXES = ("ANGEL_", "KITE_", "FEEDPOOL_", "SIMULATOR_", "MAX_", "INSTRUMENT_", "BROKER")


class ClientHost:
    """The process holding the soak's WebSocket clients (``bench/soak_client.py``)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.disconnected: list[dict[str, Any]] = []
        self._refs = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def start(cls) -> ClientHost:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "soak_client.py"),
            API_KEY,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=LINE_LIMIT,
        )
        return cls(process)

    async def _read(self) -> None:
        while line := await self.process.stdout.readline():
            message = json.loads(line)
            waiting = self._waiting.pop(message.pop("ref", None), None)
            if waiting is not None:
                waiting.set_result(message)
            elif message.get("event") == "disconnected":
                self.disconnected.append(message)
        for waiting in self._waiting.values():
            waiting.set_exception(SystemExit("the soak's client process ended"))

    async def command(self, cmd: str, within: float = 60.0, **fields: Any) -> dict[str, Any]:
        """Send one command; its answer (``SystemExit`` if none comes within ``within`` s)."""
        ref = next(self._refs)
        answer = self._waiting[ref] = asyncio.get_running_loop().create_future()
        self.process.stdin.write(json.dumps({"cmd": cmd, "ref": ref, **fields}).encode() + b"\n")
        await self.process.stdin.drain()
        try:
            return await asyncio.wait_for(answer, within)
        except TimeoutError:
            raise SystemExit(f"the soak's clients did not answer {cmd} in {within:g} s") from None

    async def stop(self) -> None:
        self.process.stdin.close()
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        await self.process.wait()
        self._reader.cancel()


class Supervisor:
    """The backend under the desktop app's supervisor: each run's ready line as it comes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.readies: asyncio.Queue[Ready] = asyncio.Queue()
        self.states: list[dict[str, Any]] = []
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def start(cls, home: Path, settings: dict[str, str]) -> Supervisor:
        """Run the backend with ``settings``, its files under ``home``."""
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)},
            "WEBSOCKET_PORT": "0",
            "ZMQ_PORT": "0",
            "FEEDPOOL_API_KEY": API_KEY,
            **{name: str(home / name.lower()) for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME")},
            **settings,
        }
        with (home / "supervisor.log").open("wb") as log:  # its log of the runs that ended
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(HERE / "soak_supervisor.py"),
                str(home / "backend.log"),
                cwd=home,
                env=env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        return cls(process)

    async def _read(self) -> None:
        while line := await self.process.stdout.readline():
            event = json.loads(line)
            if event["event"] == "ready":
                self.readies.put_nowait(msgspec.convert(event, Ready))
            else:
                self.states.append(event)

    async def ready(self, within: float = START_SECONDS) -> Ready:
        """The next run's ready line; ``SystemExit`` if none comes within ``within`` s."""
        try:
            return await asyncio.wait_for(self.readies.get(), within)
        except TimeoutError:
            last = self.states[-1] if self.states else "nothing"
            raise SystemExit(f"the backend was not ready within {within:g} s: {last}") from None

    async def stop(self) -> None:
        """Stop the backend as the app does on quit, then the supervisor."""
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        self._reader.cancel()


def simulator_command(simulator: subprocess.Popen, **fields: Any) -> dict[str, Any]:
    """One command to the simulator; its answer."""
    simulator.stdin.write(json.dumps(fields) + "\n")
    simulator.stdin.flush()
    answer = json.loads(simulator.stdout.readline() or "{}")
    if answer.get("event") in (None, "error"):
        raise SystemExit(f"the simulator refused {fields}: {answer}")
    return answer


def backend_figures(pid: int, counter: BusCounter) -> dict[str, float]:
    """The backend's RSS (MB), open files, threads and asyncio tasks (``-1``: not reported)."""
    process = psutil.Process(pid)
    return {
        "rss_mb": process.memory_info().rss / 2**20,
        "open_files": process.num_fds(),
        "threads": process.num_threads(),
        "tasks": counter.clients_stats.tasks if counter.clients_stats else -1,
    }
