"""The soak: the backend at the open's load while faults come on a schedule (``make soak``).

``python bench/soak.py --minutes 30`` runs it longer (3 minutes by default; ``--cycles N`` runs
the schedule exactly N times instead). As ``bench/overload.py`` does, it starts the exchange
simulator on its own (``python -m backend.simulator``, Angel One's protocol) and the backend
logged in to it, here under the desktop app's own supervisor run without a window
(``bench/soak_supervisor.py``), which restarts it when it dies. ``--clients`` main clients (4)
hold ``--symbols`` (2,900 of the 3,000 the account allows, so that new symbols still fit): a
tenth held by all of them, the rest split between them. Then each fault in turn
(``bench/soak_faults.py``), each waited on until it has recovered:

drop, mute
    the simulator drops one broker connection, or mutes it (healed after ``--stale-seconds``);
expire_sessions
    the broker's sessions end and the backend must log in again;
pause
    the simulator is stopped (SIGSTOP) for ``--freeze`` seconds: a frozen broker;
join_leave
    ``--join-cycles`` clients join one after another, subscribe, tick and leave;
race
    ``--racers`` clients subscribe the same new symbol at once, one more another new symbol;
stall
    a client holding everything stops reading: the backend must close it, not stall the others;
kill
    the backend is killed (SIGKILL); the supervisor restarts it as the app does, and the clients
    connect to the new run and subscribe again.

It prints per fault the time until every subscribed symbol ticked again at every client, and the
p99 of the requests made meanwhile; over the run the subscriptions lost and the requests
unanswered (both must be 0), and per backend run its RSS, open files, threads and asyncio tasks
once settled and at the end (the same: nothing left behind). It exits 1, saying why, when a
must-be-zero figure is not zero or a fault did not recover within its bound.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from overload import account, simulator_process
from soak_faults import FAULTS, JOIN_NEW, Outcome, Soak, inject, now_ms, recover
from soak_link import ClientHost, Supervisor

from backend.feed import QUOTE
from backend.instruments.master import load_master

PROBE_SYMBOLS = 8
RACE_SYMBOLS = 8
#: Figures of a backend run that must be the same at its end as once it settled.
LEFT_BEHIND = ("open_files", "threads", "tasks")


def p99(latencies: list[float]) -> float:
    if not latencies:
        return float("nan")
    ordered = sorted(latencies)
    return ordered[math.ceil(0.99 * len(ordered)) - 1]


def spares(args: argparse.Namespace, symbols: list[list[str]]) -> list[list[str]]:
    """The symbols past the main clients' that the pool still has room for."""
    room = 3 * args.per_connection - args.symbols
    needed = PROBE_SYMBOLS + RACE_SYMBOLS + 2 * JOIN_NEW
    if room < needed:
        raise SystemExit(f"--symbols leaves room for {room} new symbols; the soak needs {needed}")
    return symbols[args.symbols : args.symbols + needed]


def shares(args: argparse.Namespace, symbols: list[list[str]]) -> dict[str, list[list[str]]]:
    """Each main client's symbols: a tenth of them held by all, the rest split."""
    chosen = symbols[: args.symbols]
    shared, rest = chosen[: len(chosen) // 10], chosen[len(chosen) // 10 :]
    return {f"client{n}": shared + rest[n :: args.clients] for n in range(args.clients)}


async def subscribe_main(soak: Soak) -> Outcome:
    """The main clients connect and subscribe their shares; they must all tick."""
    start = Outcome("start", soak.args.bound)
    since = now_ms()
    for name, symbols in soak.shares.items():
        if "error" in await soak.open(name, start):
            raise SystemExit(f"start: {start.problems}")
        answer = await soak.clients.command(
            "subscribe", requests=[[name, symbols, QUOTE]], within=120
        )
        start.take(answer["results"][0], name, refusal_fails=True)
    start.recovery_s = await recover(soak, start, since, soak.args.bound)
    return start


async def schedule(soak: Soak, faults: list[str]) -> list[Outcome]:
    """The faults in turn, ``--cycles`` times or until ``--minutes`` have passed."""
    outcomes = []
    deadline = time.monotonic() + soak.args.minutes * 60
    for cycle in itertools.count(1):
        if soak.args.cycles and cycle > soak.args.cycles:
            break
        for fault in faults:
            if not soak.args.cycles and time.monotonic() > deadline:
                return outcomes
            await asyncio.sleep(soak.args.quiet)
            outcomes.append(await inject(soak, fault))
            print(line(outcomes[-1], cycle), flush=True)
    return outcomes


def line(outcome: Outcome, cycle: int | str) -> str:
    recovery = "NOT recovered" if outcome.recovery_s is None else f"{outcome.recovery_s:.2f} s"
    text = (
        f"{outcome.fault} #{cycle}: recovered in {recovery} (bound {outcome.bound_s:g} s), "
        f"requests p99 {p99(outcome.latencies):.0f} ms of {len(outcome.latencies)}, "
        f"unanswered {outcome.unanswered}, lost {len(outcome.lost)}, refused {outcome.refused}"
        f" [{'ok' if outcome.ok else 'FAILED'}]"
    )
    details = outcome.notes + [f"FAILED: {problem}" for problem in outcome.problems]
    details += [f"lost: {lost}" for lost in outcome.lost[:5]]
    return "\n".join([text, *(f"    {detail}" for detail in details)])


async def run_soak(args: argparse.Namespace) -> dict[str, Any]:
    symbols = [[i.symbol, i.exchange] for i in load_master() if i.exchange in ("NSE", "NFO")]
    spare = spares(args, symbols)
    with (
        tempfile.TemporaryDirectory(prefix="feedpool-soak-") as temporary,
        simulator_process(args.rate) as (simulator, simulator_ready),
    ):
        settings = {
            **account(simulator_ready),
            "STALE_FEED_SECONDS": str(args.stale_seconds),
            "MAX_SYMBOLS_PER_WEBSOCKET": str(args.per_connection),
        }
        supervisor = await Supervisor.start(Path(temporary), settings)
        clients = await ClientHost.start()
        soak = Soak(
            args,
            clients,
            supervisor,
            simulator,
            shares(args, symbols),
            itertools.cycle(spare[:PROBE_SYMBOLS]),
            itertools.cycle(spare[PROBE_SYMBOLS : PROBE_SYMBOLS + RACE_SYMBOLS]),
            itertools.cycle(spare[PROBE_SYMBOLS + RACE_SYMBOLS :]),
        )
        try:
            soak.watch(await supervisor.ready())
            outcomes = [await subscribe_main(soak)]
            print(line(outcomes[0], "-"), flush=True)
            soak.runs.append({"pid": soak.ready.pid, "start": await soak.settled_figures()})
            outcomes += await schedule(soak, args.faults)
            final = Outcome("final", args.bound)
            final.recovery_s = await recover(soak, final, now_ms(), args.bound)
            outcomes.append(final)
            print(line(final, "-"), flush=True)
            soak.runs[-1]["end"] = await soak.settled_figures()
        finally:
            await clients.stop()
            await supervisor.stop()
            if soak.counter is not None:
                soak.counter.stop()
    return {"outcomes": outcomes, "runs": soak.runs}


def report(result: dict[str, Any]) -> dict[str, Any]:
    """Print the run's figures; the summary, with every failure named."""
    outcomes: list[Outcome] = result["outcomes"]
    lost = sum(len(o.lost) for o in outcomes)
    unanswered = sum(o.unanswered for o in outcomes)
    failures = [f"{o.fault}: {o.problems or 'recovery or requests'}" for o in outcomes if not o.ok]
    if lost:
        failures.append(f"{lost} subscriptions lost")
    if unanswered:
        failures.append(f"{unanswered} requests unanswered")
    print(f"\nsubscriptions lost: {lost}\nrequests unanswered: {unanswered}")
    for n, run in enumerate(result["runs"], 1):
        start, end = run["start"], run.get("end", {})
        figures = ", ".join(
            f"{name} {start[name]:g} -> {end.get(name, float('nan')):g}" for name in start
        )
        print(f"backend run {n} (pid {run['pid']}): {figures}")
        for name in LEFT_BEHIND:
            if name in end and end[name] != start[name]:
                failures.append(f"backend run {n}: {name} {start[name]:g} -> {end[name]:g}")
    print("soak passed" if not failures else "soak FAILED:\n  " + "\n  ".join(failures))
    return {
        "faults": [
            {
                "fault": o.fault,
                "ok": o.ok,
                "recovery_s": o.recovery_s,
                "bound_s": o.bound_s,
                "requests": len(o.latencies),
                "p99_ms": p99(o.latencies),
                "unanswered": o.unanswered,
                "lost": o.lost,
                "problems": o.problems,
                "notes": o.notes,
            }
            for o in outcomes
        ],
        "lost": lost,
        "unanswered": unanswered,
        "runs": result["runs"],
        "failures": failures,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="how long the faults go on")
    parser.add_argument("--cycles", type=int, default=0, help="run the schedule N times instead")
    parser.add_argument(
        "--faults",
        type=lambda text: text.split(","),
        default=list(FAULTS),
        help=f"the schedule, comma-separated (default: {','.join(FAULTS)})",
    )
    parser.add_argument("--symbols", type=int, default=2900, help="held by the main clients")
    parser.add_argument("--clients", type=int, default=4, help="main clients")
    parser.add_argument("--rate", type=float, default=4.0, help="ticks per second per symbol")
    parser.add_argument(
        "--per-connection", type=int, default=1000, help="MAX_SYMBOLS_PER_WEBSOCKET (Angel's)"
    )
    parser.add_argument("--stale-seconds", type=float, default=5.0, help="STALE_FEED_SECONDS")
    parser.add_argument("--freeze", type=float, default=6.0, help="seconds the broker is frozen")
    parser.add_argument("--join-cycles", type=int, default=10, help="clients joining and leaving")
    parser.add_argument("--racers", type=int, default=40, help="clients racing for a symbol")
    parser.add_argument("--bound", type=float, default=15.0, help="recovery bound, seconds")
    parser.add_argument("--quiet", type=float, default=2.0, help="seconds between faults")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    unknown = set(args.faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULTS)}")
    print(
        f"FeedPool soak: {args.symbols:,} symbols x {args.rate:g}/s, {args.clients} clients, "
        f"faults {','.join(args.faults)}, "
        + (f"{args.cycles} cycle(s)" if args.cycles else f"{args.minutes:g} minutes"),
        flush=True,
    )
    summary = report(asyncio.run(run_soak(args)))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
