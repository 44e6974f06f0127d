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
            process = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "backend.simulator", "--port", "0", *args),
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
            )
        simulator = cls(process, log, {})
        simulator.ready = await simulator._event()
        assert simulator.ready.get("event") == "ready", simulator.ready
        return simulator

    async def _event(self) -> dict[str, Any]:
        line = await asyncio.wait_for(self.process.stdout.readline(), WAIT)
        assert line, f"the simulator exited; its log:\n{self.log.read_text()}"
        return json.loads(line)

    async def command(self, **command: Any) -> dict[str, Any]:
        """Send one command; its answer."""
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        await self.process.stdin.drain()
        return await self._event()

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), WAIT)
