"""The bundled exchange simulator in a child process of the backend."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from backend.instruments.master import MasterFormatError, load_master
from backend.runtime import collector, event_loop
from backend.runtime.process_watch import process_ended
from backend.simulator.credentials import SimulatorCredentials
from backend.simulator.server import ExchangeSimulator

log = logging.getLogger("feedpool.backend")

START_TIMEOUT = 30.0
STOP_TIMEOUT = 1.0


class SimulatorStartError(RuntimeError):
    """The simulator's child process could not start serving."""


class SimulatorProcess:
    """The bundled exchange simulator, serving in a child process.

    The simulator makes and sends every tick, about as much work per tick as the adapters do to
    receive it. In a process of its own it runs on the machine's other core, and the backend's
    event loop is left to the adapters and the clients: at the NSE opening peak (12,000 ticks/s)
    on two cores, that loop is 62-72% busy instead of 80-100%, which keeps the latency tail
    under 20 ms (see the README's benchmark).

    The child is started with ``spawn`` (a fork would copy the bus's threads and sockets). It
    accepts ``credentials`` (:class:`~backend.simulator.SimulatorCredentials`' defaults if
    :obj:`None`), ignores SIGINT (a Ctrl-C is the backend's to handle), ends when :meth:`stop`
    ends it, and ends on its own when the backend dies.
    """

    def __init__(
        self,
        broker: str,
        ticks_per_second: float,
        seed: int | None,
        master: str | None,
        credentials: SimulatorCredentials | None = None,
    ) -> None:
        self.credentials = credentials or SimulatorCredentials()
        #: Where the simulator listens, serves its instrument master and its REST logins, once
        #: started.
        self.url = ""
        self.master = ""
        self.rest = ""
        options = SimulatorOptions(broker, ticks_per_second, seed, master, self.credentials)
        self._arguments = (options, os.getpid())
        self._process: multiprocessing.process.BaseProcess | None = None

    async def start(self) -> None:
        """Start the child and wait until it listens; :class:`SimulatorStartError` if it cannot."""
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(
            target=run_simulator,
            args=(sender, *self._arguments),
            name="feedpool-simulator",
            daemon=True,
        )
        self._process.start()
        sender.close()
        try:
            loop = asyncio.get_running_loop()
            state, detail = await loop.run_in_executor(None, _first_word, receiver)
        finally:
            receiver.close()
        if state != "ready":
            raise SimulatorStartError(detail)
        self.url, self.master, self.rest = detail
        log.info("Exchange simulator serving on %s (process %d)", self.url, self._process.pid)

    async def stop(self) -> None:
        """End the child process."""
        process = self._process
        if process is None or not process.is_alive():
            return
        process.terminate()
        await asyncio.get_running_loop().run_in_executor(None, process.join, STOP_TIMEOUT)
        if process.is_alive():
            process.kill()


def _first_word(receiver: Connection) -> tuple[str, Any]:
    """``("ready", (url, master url, REST root))`` or ``("error", why)``: the child's first word."""
    if not receiver.poll(START_TIMEOUT):
        return "error", f"the simulator did not start within {START_TIMEOUT:g} s"
    try:
        return receiver.recv()
    except EOFError:
        return "error", "the simulator process ended before it listened"


@dataclass(frozen=True, slots=True)
class SimulatorOptions:
    """What the child plays: the broker, the tick rate, the seed, the bundled-format master and
    the account."""

    broker: str
    ticks_per_second: float
    seed: int | None
    master: str | None
    credentials: SimulatorCredentials


def run_simulator(sender: Connection, options: SimulatorOptions, parent_pid: int) -> None:
    """The simulator's child process: serve until ended, or until process ``parent_pid`` ends.

    Sends ``("ready", (url, master url, REST root))`` on ``sender`` once listening, or
    ``("error", why)``.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    event_loop.run(_serve_simulator(sender, options, parent_pid))


async def _serve_simulator(sender: Connection, options: SimulatorOptions, parent_pid: int) -> None:
    try:
        simulator = ExchangeSimulator(
            load_master(options.master),
            options.credentials,
            broker=options.broker,
            ticks_per_second=options.ticks_per_second,
            seed=options.seed,
        )
        await simulator.start()
    except (OSError, MasterFormatError) as exc:
        sender.send(("error", f"cannot start the simulator: {exc}"))
        return
    collector.settle()
    sender.send(("ready", (simulator.url, simulator.master_url, simulator.rest_url)))
    sender.close()
    try:
        await process_ended(parent_pid)
    finally:
        await simulator.stop()
