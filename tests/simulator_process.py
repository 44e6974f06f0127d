"""``python -m backend.simulator`` in a subprocess: a broker of its own, commanded on stdin."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WAIT = 30.0


async def spawn(*args: str, stderr: Any = asyncio.subprocess.PIPE) -> asyncio.subprocess.Process:
    """``python -m backend.simulator --port 0 ARGS``, its stdin and stdout piped."""
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "backend.simulator", "--port", "0", *args),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
    )


async def read_event(process: asyncio.subprocess.Process) -> dict[str, Any]:
    """The next JSON line the simulator prints."""
    line = await asyncio.wait_for(process.stdout.readline(), WAIT)
    assert line, "the simulator exited"
    return json.loads(line)


async def command(process: asyncio.subprocess.Process, message: str | dict) -> dict[str, Any]:
    """Send one command line (a JSON object, or any text); the simulator's answer."""
    text = message if isinstance(message, str) else json.dumps(message)
    process.stdin.write(text.encode() + b"\n")
    await process.stdin.drain()
    return await read_event(process)


class StandaloneSimulator:
    """The simulator as a broker apart from the backend; its log goes to a file."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path, ready: dict) -> None:
        self.process = process
        self.log = log
        #: The ready line: ``url``, ``rest``, ``master``, ...
        self.ready = ready

    @classmethod
    async def start(cls, workdir: Path, *args: str) -> StandaloneSimulator:
        log = workdir / f"simulator-{time.monotonic_ns()}.log"
        with log.open("wb") as stderr:
            process = await spawn(*args, stderr=stderr)
        ready = await read_event(process)
        assert ready.get("event") == "ready", f"{ready}; its log:\n{log.read_text()}"
        return cls(process, log, ready)

    async def command(self, **fields: Any) -> dict[str, Any]:
        """Send one command; its answer."""
        return await command(self.process, fields)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), WAIT)
