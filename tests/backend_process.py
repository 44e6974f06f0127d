"""``python -m backend`` in a subprocess, started as the desktop app starts it, for the tests."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from pathlib import Path

from proxy_client import API_KEY

START_TIMEOUT = 30.0
#: Settings of the developer's environment that a test's backend must not inherit.
SETTING_PREFIXES = ("ANGEL_", "KITE_", "FEEDPOOL_", "SIMULATOR_", "MAX_", "INSTRUMENT_", "BROKER")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def allow_bus_client(name: str, **env: str) -> tuple[int, dict, str]:
    """``python -m backend --allow-bus-client NAME``: its exit status, its one stdout line as
    JSON, and its stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "backend",
        "--allow-bus-client",
        name,
        env={**os.environ, **env},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
    lines = out.decode().splitlines()
    assert len(lines) == 1, f"expected one line, got {lines}; stderr:\n{err.decode()}"
    return process.returncode, json.loads(lines[0]), err.decode()


class BackendProcess:
    """A ``python -m backend`` subprocess; logs go to a file, the first stdout line is read."""

    def __init__(self, process: asyncio.subprocess.Process, stderr: Path) -> None:
        self.process = process
        self.stderr = stderr

    @classmethod
    async def start(cls, workdir: Path, *args: str, **env: str) -> tuple[BackendProcess, dict]:
        """The backend and its first stdout line: the ready line, or an error line."""
        backend = await cls.spawn(workdir, *args, **env)
        line = await asyncio.wait_for(backend.process.stdout.readline(), START_TIMEOUT)
        assert line, f"no ready line; stderr:\n{backend.stderr.read_text()}"
        return backend, json.loads(line)

    @classmethod
    async def spawn(cls, workdir: Path, *args: str, **env: str) -> BackendProcess:
        """The backend, started; nothing read yet."""
        environment = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("ANGEL_", "KITE_", "FEEDPOOL_", "SIMULATOR_BROKER", "MAX_"))
            },
            "WEBSOCKET_PORT": "0",
            "ZMQ_PORT": "0",
            "FEEDPOOL_API_KEY": API_KEY,
            "SIMULATOR_TICKS_PER_SECOND": "5",
            "SIMULATOR_SEED": "7",
            **env,
        }
        stderr = workdir / f"backend-{time.monotonic_ns()}.log"
        with stderr.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "backend",
                *args,
                cwd=workdir,  # no stray .env
                env=environment,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        return cls(process, stderr)

    async def exited(self, within: float = 10.0) -> int:
        return await asyncio.wait_for(self.process.wait(), within)

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
