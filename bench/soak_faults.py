"""The soak's faults, each injected and then waited on until it has recovered.

Every fault returns an :class:`Outcome`. Its recovery is the time from the fault's end (the
drop answered, the simulator resumed, the race started, ...) until every symbol every client
holds has ticked again; meanwhile each main client keeps making requests (subscribe a symbol
nobody holds, wait for its tick, unsubscribe it), whose latencies are the fault's. A symbol a
client was told ``success`` for that does not tick within the bound and
:data:`LOST_GRACE_SECONDS` more is a lost subscription; a request with no reply within 10 s is
unanswered (``bench/soak_client.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from run import BusCounter
from soak_client import now_ms
from soak_link import ClientHost, Supervisor, backend_figures, simulator_command

from backend.bus.messages import Ready
from backend.feed import LTP, QUOTE

LOST_GRACE_SECONDS = 10.0
#: A subscription's first tick must come this soon after its reply.
TICK_SECONDS = 10.0
PROBE_INTERVAL_SECONDS = 1.0
#: A client that stops reading is closed after its outbox was full 10 s; filling it takes more.
STALL_BOUND_SECONDS = 30.0
#: The longest the other clients may go without a frame while one client stalls.
SILENCE_BOUND_MS = 2000.0
#: How long the pool's symbol count may take to come back after a fault.
SLOTS_SECONDS = 5.0
JOIN_HELD = 20
JOIN_NEW = 10
RESTART_SECONDS = 30.0
FIGURES_SECONDS = 5.0


@dataclass
class Outcome:
    """What one fault did: its recovery against its bound, its requests, what it lost."""

    fault: str
    bound_s: float
    recovery_s: float | None = None
    latencies: list[float] = field(default_factory=list)
    unanswered: int = 0
    lost: list[str] = field(default_factory=list)
    refused: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def take(self, result: dict[str, Any], client: str, refusal_fails: bool = False) -> None:
        """Count one request's RESULT (see ``bench/soak_client.py``) of ``client``."""
        if result.get("unanswered"):
            self.unanswered += 1
        elif result.get("disconnected"):
            self.problems.append(f"{client} was disconnected during a request")
        else:
            self.latencies.append(result["latency_ms"])
            self.lost += [f"{client} {key} (no first tick)" for key in result["silent"]]
            self.refused += len(result["failed"])
            if result["failed"] and refusal_fails:
                self.problems.append(f"{client} was refused: {result['failed'][0]}")

    @property
    def ok(self) -> bool:
        return (
            self.recovery_s is not None
            and self.recovery_s <= self.bound_s
            and not self.lost
            and not self.unanswered
            and not self.problems
        )


@dataclass
class Soak:
    """The running soak: its processes, the main clients' symbols and the spare ones."""

    args: argparse.Namespace
    clients: ClientHost
    supervisor: Supervisor
    simulator: subprocess.Popen
    #: Main client name -> the symbols it holds, ``[symbol, exchange]`` each.
    shares: dict[str, list[list[str]]]
    probes: Iterator[list[str]]
    racing: Iterator[list[str]]
    joining: Iterator[list[str]]
    #: The backend run's ready line and a subscriber of its bus.
    ready: Ready | None = None
    counter: BusCounter | None = None
    #: Per backend run: its pid and its figures once settled (``start``) and at its end.
    runs: list[dict[str, Any]] = field(default_factory=list)

    async def simulator_says(self, **command: Any) -> dict[str, Any]:
        return await asyncio.to_thread(simulator_command, self.simulator, **command)

    def figures(self) -> dict[str, float]:
        return backend_figures(self.ready.pid, self.counter)

    async def settled_figures(self) -> dict[str, float]:
        """The backend's figures, once two more ``SYS.CLIENTS`` have come (the second one
        counted its tasks after the last request)."""
        for _ in range(2):
            seen = self.counter.clients_stats
            await until(lambda seen=seen: self.counter.clients_stats is not seen, FIGURES_SECONDS)
        return self.figures()

    def watch(self, ready: Ready) -> None:
        """Follow the backend run of ``ready``: its bus, its process."""
        if self.counter is not None:
            self.counter.stop()
        self.ready, self.counter = ready, BusCounter(ready.zmq, [])
        self.counter.start()

    async def open(self, name: str, outcome: Outcome, **options: Any) -> dict[str, Any]:
        opened = await self.clients.command("open", id=name, url=self.ready.ws, **options)
        if "error" in opened:
            outcome.problems.append(f"{name} could not connect: {opened['error']}")
        return opened

    async def pool_symbols(self, differing_from: int | None = None) -> int:
        """The pool's symbol count on ``SYS.POOL``: once it equals ``differing_from`` (if
        given) or after :data:`SLOTS_SECONDS`."""
        deadline = time.monotonic() + SLOTS_SECONDS
        while True:
            pool = self.counter.pool_stats
            total = pool.total_symbols if pool else None
            done = differing_from is None or total == differing_from
            if (total is not None and done) or time.monotonic() > deadline:
                return -1 if total is None else total
            await asyncio.sleep(0.1)


async def until(condition: Callable[[], bool], within: float) -> float | None:
    """When ``condition()`` first held (ms), polled every 50 ms; ``None`` if not in time."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return now_ms()
        await asyncio.sleep(0.05)
    return None


async def probe_round(soak: Soak, outcome: Outcome) -> None:
    """Each main client subscribes a symbol nobody holds, awaits its tick, unsubscribes it."""
    requests = [[name, [next(soak.probes)], QUOTE] for name in soak.shares]
    for action in ("subscribe", "unsubscribe"):
        answer = await soak.clients.command(action, requests=requests, await_tick_s=TICK_SECONDS)
        for (name, *_), result in zip(requests, answer["results"], strict=True):
            outcome.take(result, name)


async def recover(soak: Soak, outcome: Outcome, since_ms: float, bound_s: float) -> float | None:
    """Seconds from ``since_ms`` until every held symbol ticked at every client (``None`` if
    some never did), probing requests meanwhile and once after; late and lost ones noted."""
    wait = asyncio.ensure_future(
        soak.clients.command(
            "wait",
            within=bound_s + LOST_GRACE_SECONDS + 60,
            since_ms=since_ms,
            within_s=bound_s,
            grace_s=LOST_GRACE_SECONDS,
        )
    )
    while not wait.done():
        await probe_round(soak, outcome)
        await asyncio.wait({wait}, timeout=PROBE_INTERVAL_SECONDS)
    await probe_round(soak, outcome)
    answer = wait.result()
    if answer["late"]:
        outcome.notes.append(f"{answer['late']} subscriptions had not ticked within {bound_s:g} s")
    outcome.lost += [f"{name} {key}" for name, key in answer["lost"]]
    recovered = answer["recovered_ms"]
    return None if recovered is None else (recovered - since_ms) / 1000


async def busiest(soak: Soak) -> int:
    """The simulator's connection holding the most tokens."""
    connections = (await soak.simulator_says(command="connections"))["connections"]
    return max(connections, key=lambda c: c["token_count"])["id"]


async def broker_fault(soak: Soak, outcome: Outcome, **command: Any) -> None:
    await soak.simulator_says(**command)
    outcome.recovery_s = await recover(soak, outcome, now_ms(), outcome.bound_s)


async def drop(soak: Soak, outcome: Outcome) -> None:
    """A broker connection dropped abruptly."""
    await broker_fault(soak, outcome, command="drop", connection=await busiest(soak))


async def mute(soak: Soak, outcome: Outcome) -> None:
    """A broker connection that stays open and sends no more ticks."""
    await broker_fault(soak, outcome, command="mute", connection=await busiest(soak))


async def expire_sessions(soak: Soak, outcome: Outcome) -> None:
    """The broker's sessions end: every connection closes, every token is refused."""
    await broker_fault(soak, outcome, command="expire_sessions")


async def pause(soak: Soak, outcome: Outcome) -> None:
    """A frozen broker: the simulator stopped (SIGSTOP) for ``--freeze`` s, then resumed."""
    os.kill(soak.simulator.pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(soak.args.freeze)
    finally:
        os.kill(soak.simulator.pid, signal.SIGCONT)
    outcome.recovery_s = await recover(soak, outcome, now_ms(), outcome.bound_s)


async def join_leave(soak: Soak, outcome: Outcome) -> None:
    """Clients join one after another, each subscribing symbols held and new ones, and leave."""
    before = soak.figures()
    held = next(iter(soak.shares.values()))[:JOIN_HELD]
    for cycle in range(soak.args.join_cycles):
        name = f"joiner{cycle}"
        if "error" in await soak.open(name, outcome):
            continue
        symbols = held + [next(soak.joining) for _ in range(JOIN_NEW)]
        answer = await soak.clients.command(
            "subscribe", requests=[[name, symbols, QUOTE]], await_tick_s=TICK_SECONDS
        )
        outcome.take(answer["results"][0], name, refusal_fails=True)
        await soak.clients.command("close", id=name)
    outcome.recovery_s = await recover(soak, outcome, now_ms(), outcome.bound_s)
    after, cycles = soak.figures(), soak.args.join_cycles
    growth = after["rss_mb"] - before["rss_mb"]
    outcome.notes.append(
        f"backend RSS {before['rss_mb']:.1f} -> {after['rss_mb']:.1f} MB over {cycles} cycles "
        f"({growth * 1024 / cycles:+.0f} KB a cycle), open files {before['open_files']} -> "
        f"{after['open_files']}"
    )


async def race(soak: Soak, outcome: Outcome) -> None:
    """``--racers`` clients subscribe the same new symbol at once, another a different one."""
    names = [f"racer{n}" for n in range(soak.args.racers)] + ["racer-other"]
    opened = await asyncio.gather(*(soak.open(name, outcome) for name in names))
    names = [name for name, answer in zip(names, opened, strict=True) if "error" not in answer]
    first, other = next(soak.racing), next(soak.racing)
    requests = [[name, [first], QUOTE] for name in names[:-1]] + [[names[-1], [other], QUOTE]]
    start = now_ms()
    answer = await soak.clients.command("subscribe", requests=requests, await_tick_s=TICK_SECONDS)
    for (name, *_), result in zip(requests, answer["results"], strict=True):
        outcome.take(result, name, refusal_fails=True)
    outcome.recovery_s = await recover(soak, outcome, start, outcome.bound_s)
    await asyncio.gather(*(soak.clients.command("close", id=name) for name in names))


async def stall(soak: Soak, outcome: Outcome) -> None:
    """A client holding every symbol (LTP and Quote) stops reading: the backend must close it
    (its recovery: when it did) while the others keep ticking."""
    name = "stalled"
    if "error" in await soak.open(name, outcome, small_buffer=True):
        return
    symbols = [symbol for share in soak.shares.values() for symbol in share]
    requests = [[name, symbols, LTP], [name, symbols, QUOTE]]
    for result in (await soak.clients.command("subscribe", requests=requests))["results"]:
        outcome.take(result, name, refusal_fails=True)
    await soak.clients.command("silence")
    peer = (await soak.clients.command("stall", id=name))["peer"]
    start = now_ms()

    def present() -> bool:
        return any(s.peer == peer for s in soak.counter.sessions())

    await until(present, FIGURES_SECONDS)
    closed_at = await until(lambda: not present(), outcome.bound_s)
    silence = (await soak.clients.command("silence"))["longest_ms"]
    closed = await soak.clients.command("resume", id=name)
    if closed_at is None:
        outcome.problems.append(f"not closed by the backend within {outcome.bound_s:g} s")
    else:
        outcome.recovery_s = (closed_at - start) / 1000
        outcome.notes.append(f"closed with {closed.get('code')} {closed.get('reason')!r}")
    longest = max(silence[name] for name in soak.shares)
    outcome.notes.append(f"the other clients' longest silence {longest:.0f} ms")
    if longest > SILENCE_BOUND_MS:
        outcome.problems.append(f"the other clients went {longest:.0f} ms without a frame")
    after = await recover(soak, outcome, now_ms(), soak.args.bound)
    if after is None or after > soak.args.bound:
        outcome.problems.append("the other clients did not all tick again in time")


async def kill(soak: Soak, outcome: Outcome) -> None:
    """The backend killed (SIGKILL) under the desktop app's supervisor, which restarts it; the
    clients connect to the new run and subscribe again."""
    soak.runs[-1]["end"] = await soak.settled_figures()
    start = now_ms()
    os.kill(soak.ready.pid, signal.SIGKILL)
    soak.watch(await soak.supervisor.ready(RESTART_SECONDS))
    opened = await asyncio.gather(*(soak.open(name, outcome) for name in soak.shares))
    for name, answer in zip(soak.shares, opened, strict=True):
        if answer.get("resubscribe"):
            outcome.take(answer["resubscribe"], name, refusal_fails=True)
    outcome.recovery_s = await recover(soak, outcome, start, outcome.bound_s)
    soak.runs.append({"pid": soak.ready.pid, "start": await soak.settled_figures()})


FAULTS = {
    "drop": drop,
    "mute": mute,
    "expire_sessions": expire_sessions,
    "pause": pause,
    "join_leave": join_leave,
    "race": race,
    "stall": stall,
    "kill": kill,
}


def bound(fault: str, args: argparse.Namespace) -> float:
    """The recovery bound of ``fault``, in seconds."""
    if fault == "mute":
        return args.stale_seconds + args.bound
    if fault == "stall":
        return STALL_BOUND_SECONDS
    if fault == "kill":
        return RESTART_SECONDS
    return args.bound


async def inject(soak: Soak, fault: str) -> Outcome:
    """Inject ``fault``, wait for its recovery; the pool's symbol count must come back."""
    outcome = Outcome(fault, bound(fault, soak.args))
    slots = await soak.pool_symbols()
    await FAULTS[fault](soak, outcome)
    after = await soak.pool_symbols(differing_from=slots)
    if after != slots:
        outcome.problems.append(f"the pool holds {after} symbols, {slots} before: slots left")
    return outcome
