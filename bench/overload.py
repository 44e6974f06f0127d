"""Overload: the feed offered more than the machine can carry, then the load falling.

``python bench/overload.py`` (``make bench`` runs it) starts the exchange simulator on its own
(``python -m backend.simulator``), the backend logged in to it as a real Angel One account, and
one benchmark client taking every symbol at Quote. The simulator ticks at ``--high`` per symbol
for ``--seconds``, then at ``--normal`` (its ``rate`` command) for ``--after`` seconds.

Without ``--high`` the rate is found on this machine first: from :data:`FIRST_RATE` up, each
rate is held for a probe of :data:`PROBE_SECONDS`, and raised until the broker connections are
offered :data:`SATURATION_FACTOR` times what the adapters publish (at most :data:`MAX_RATE`).
A fixed rate would overload a slow host and not a fast one. It reports:

- offered/s: ticks the broker connections received while overloaded (published and shed),
  carried/s: ticks the client received meanwhile, and their ratio: at 2 or more the offer was at
  least twice what the machine carries (its saturation rate);
- p99 and max age at receipt (receipt time minus exchange timestamp) while overloaded;
- stale subscriptions: those whose newest tick received had been stamped more than
  :data:`FRESH_SECONDS` before the load fell (conflation must keep every price fresh);
- shed: per connection (the adapters' ``ticks_shed`` on ``SYS.POOL``) and per client (the
  proxy's ``conflated`` on ``SYS.CLIENTS``);
- the backend's peak RSS and CPU per tick it carried;
- recovery: from the fall to the first 250 ms slot from which on the p99 is under the open's
  floor, in that slot and over the rest of the window;
- other load: CPU the machine spent on other processes meanwhile, which disturbs the figures.

Floors (the issue's): p99 age under 1 s, backend RSS under 250 MB, no stale subscription,
recovery within 2 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from run import (
    FLOOR_P99_MS,
    BusCounter,
    Histogram,
    Usage,
    backend_process,
    client_processes,
    merge,
    percentile,
    read_event,
    ready_process,
)

from backend.brokers.angel import BROKER as ANGEL
from backend.instruments.master import load_master
from backend.simulator.credentials import SimulatorCredentials

SLOT_MS = 250
WARMUP_SECONDS = 3.0
GRACE_SECONDS = 1.5
FRESH_SECONDS = 2.0
FLOOR_AGE_P99_MS = 1000.0
FLOOR_RSS_MB = 250
FLOOR_RECOVERY_SECONDS = 2.0
#: The search for an overloading rate, in ticks/s per symbol.
FIRST_RATE = 50.0
MAX_RATE = 400.0
#: Offered over published that counts as overloaded: the floor's 2, with a margin, since the
#: client can carry no more than the adapters publish.
SATURATION_FACTOR = 2.2
#: A probe: the rate settles, then is measured between the adapters' counters.
SETTLE_SECONDS = 1.0
PROBE_SECONDS = 2.0
#: How often the adapters' counters come (``SYS.POOL``), with a margin.
COUNTER_SECONDS = 1.1


Started = tuple[subprocess.Popen, dict[str, Any]]


def simulator_process(rate: float) -> AbstractContextManager[Started]:
    """``python -m backend.simulator`` (Angel One) at ``rate``: the process and its ready line,
    commanded on stdin."""
    command = [sys.executable, "-m", "backend.simulator", "--port", "0", "--seed", "1"]
    return ready_process(
        "the simulator",
        [*command, "--ticks-per-second", str(rate)],
        stdin=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def set_rate(simulator: subprocess.Popen, rate: float) -> None:
    simulator.stdin.write(json.dumps({"command": "rate", "ticks_per_second": rate}) + "\n")
    simulator.stdin.flush()
    answer = json.loads(simulator.stdout.readline() or "{}")
    if answer.get("event") != "rate":
        raise SystemExit(f"the simulator refused the rate: {answer}")


def account(ready: dict[str, Any]) -> dict[str, str]:
    """The backend's settings for the simulator's Angel One account."""
    settings = ANGEL.simulator_settings(SimulatorCredentials(), ready["rest"])
    return {
        "BROKER": "angel",
        "ANGEL_WS_URL": ready["url"],
        "INSTRUMENT_MASTER": ready["master"],
        **settings,
    }


def overloading_rate(simulator: subprocess.Popen, counter: BusCounter, rate: float) -> float:
    """The first rate from ``rate`` up (each step at least 1.25 times the last) at which the
    broker connections are offered :data:`SATURATION_FACTOR` times what the adapters publish, or
    :data:`MAX_RATE`; the simulator is left at it."""
    while True:
        start_ms = (time.time() + SETTLE_SECONDS) * 1000
        end_ms = start_ms + PROBE_SECONDS * 1000
        # Until a counter after the probe's end has come.
        time.sleep((end_ms - time.time() * 1000) / 1000 + COUNTER_SECONDS)
        published = counter.ticks_between(start_ms, end_ms) / PROBE_SECONDS
        offered = published + counter.ticks_between(start_ms, end_ms, column=2) / PROBE_SECONDS
        print(
            f"probe {rate:g}/s per symbol: offered {offered:,.0f}/s, published {published:,.0f}/s",
            flush=True,
        )
        if offered >= SATURATION_FACTOR * published or rate >= MAX_RATE:
            return rate
        rate = min(MAX_RATE, rate * max(1.25, 2.5 * published / offered))
        set_rate(simulator, rate)


def recovery_seconds(slots: dict[int, Histogram], fall_slot: int, last_slot: int) -> float:
    """Seconds from the fall to the first slot from which on latency is normal by the open's
    measure: that slot's p99, and the p99 of all the slots from it to the end, under the open's
    floor; ``inf`` if that never came."""
    rest: Histogram = {}
    recovered = None
    for slot in range(last_slot - 1, fall_slot - 1, -1):  # from the end, merging as it goes
        histogram = slots.get(slot, {})
        merge(rest, histogram)
        if not histogram or percentile(histogram, 0.99) >= FLOOR_P99_MS:
            continue
        if percentile(rest, 0.99) < FLOOR_P99_MS:
            recovered = slot
    return float("inf") if recovered is None else (recovered - fall_slot) * SLOT_MS / 1000


def measure(args: argparse.Namespace) -> dict[str, Any]:
    symbols = [(i.symbol, i.exchange) for i in load_master() if i.exchange in ("NSE", "NFO")]
    chosen = symbols[: args.symbols]
    with (
        tempfile.TemporaryDirectory(prefix="feedpool-overload-") as temporary,
        simulator_process(args.high or FIRST_RATE) as (simulator, ready),
        backend_process(Path(temporary), account(ready)) as (backend, backend_ready),
    ):
        counter = BusCounter(backend_ready.zmq, [])
        counter.start()
        with client_processes(backend_ready.ws, [chosen], Path(temporary)) as clients:
            high = args.high or overloading_rate(simulator, counter, FIRST_RATE)
            start_ms = int((time.time() + WARMUP_SECONDS) * 1000)
            fall_ms = start_ms + int(args.seconds * 1000)
            end_ms = fall_ms + int(args.after * 1000)
            window = {
                "start_ms": start_ms,
                "end_ms": fall_ms,
                "grace_s": args.after + GRACE_SECONDS,
                "watch": [],
                "slot_ms": SLOT_MS,
                "newest_before_ms": fall_ms,
            }
            clients[0].stdin.write(json.dumps(window) + "\n")
            clients[0].stdin.flush()
            usage = Usage(backend.pid, [clients[0].pid], simulator.pid)
            usage.sample_until(start_ms)
            before = usage.snapshot()
            usage.sample_until(fall_ms)
            after = usage.snapshot()
            overload_rss = usage.peak_rss
            set_rate(simulator, args.normal)
            usage.sample_until(end_ms)
            outcome = read_event(clients[0], "result")
        counter.stop()
    slots = {int(slot): {int(b): n for b, n in h.items()} for slot, h in outcome["slots"].items()}
    fall_slot = (fall_ms - start_ms) // SLOT_MS
    overloaded: Histogram = {}
    for slot in range(fall_slot):
        merge(overloaded, slots.get(slot, {}))
    carried = sum(overloaded.values()) / args.seconds
    published = counter.ticks_between(start_ms, fall_ms) / args.seconds
    shed = counter.ticks_between(start_ms, fall_ms, column=2) / args.seconds
    backend_cpu, simulator_cpu, _, ours, machine = (
        (b - a) / args.seconds for a, b in zip(before, after, strict=True)
    )
    fresh_from = fall_ms - FRESH_SECONDS * 1000
    newest = outcome["newest"]
    stale = sum(newest.get(f"{e}_{s}", 0) < fresh_from for s, e in chosen)
    return {
        "high": high,
        "offered": published + shed,
        "carried": carried,
        "age_p99": percentile(overloaded, 0.99),
        "age_max": percentile(overloaded, 1.0),
        "stale": stale,
        "subscriptions": len(chosen),
        "shed_per_connection": {c.index: c.ticks_shed for c in counter.connections()},
        "conflated_per_client": {c.client: c.conflated for c in counter.sessions()},
        "rss_mb": overload_rss / 2**20,
        "backend_cpu": backend_cpu,
        "simulator_cpu": simulator_cpu,
        "other_cpu": max(0.0, machine - ours),
        "recovery": recovery_seconds(slots, fall_slot, (end_ms - start_ms) // SLOT_MS),
        "after": [
            percentile(slots.get(slot, {}), 0.99)
            for slot in range(fall_slot, (end_ms - start_ms) // SLOT_MS)
        ],
    }


def report(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    offered, carried = figures["offered"], figures["carried"]
    ratio = offered / carried if carried else float("inf")
    lines = {
        "load": f"{args.symbols:,} symbols x {figures['high']:.4g}/s for {args.seconds:g} s, "
        f"then x {args.normal:g}/s",
        "offered/s": f"{offered:,.0f} (at the broker connections)",
        "carried/s": f"{carried:,.0f} (to the client); offered {ratio:.1f}x what was carried",
        "age p99/max": f"{figures['age_p99']:.0f} / {figures['age_max']:.0f} ms",
        "stale": f"{figures['stale']} of {figures['subscriptions']:,} subscriptions",
        "shed per connection": json.dumps(figures["shed_per_connection"]),
        "conflated per client": json.dumps(figures["conflated_per_client"]),
        "backend": f"{figures['backend_cpu']:.0%} CPU, "
        f"{figures['backend_cpu'] / carried * 1e6 if carried else 0:.1f} us per carried tick, "
        f"peak RSS {figures['rss_mb']:.0f} MB",
        "simulator": f"{figures['simulator_cpu']:.0%} CPU",
        "other load": f"{figures['other_cpu']:.0%} of a core (not the benchmark's)",
        "recovery": f"{figures['recovery']:.2f} s after the load fell",
        "p99 after the fall": " ".join(f"{p99:.0f}" for p99 in figures["after"])
        + f" ms (each {SLOT_MS} ms)",
    }
    width = max(map(len, lines))
    for name, value in lines.items():
        print(f"{name:<{width}}  {value}")
    floors = [
        (f"offered at least 2x carried ({ratio:.1f}x)", ratio >= 2),
        (f"age p99 < {FLOOR_AGE_P99_MS:g} ms", figures["age_p99"] < FLOOR_AGE_P99_MS),
        (f"RSS < {FLOOR_RSS_MB} MB", figures["rss_mb"] < FLOOR_RSS_MB),
        ("every subscription fresh", figures["stale"] == 0),
        (
            f"recovery <= {FLOOR_RECOVERY_SECONDS:g} s",
            figures["recovery"] <= FLOOR_RECOVERY_SECONDS,
        ),
    ]
    for name, met in floors:
        print(f"floor {name}: {'met' if met else 'NOT met'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=3000)
    parser.add_argument(
        "--high", type=float, help="ticks/s per symbol, overload (default: found by probes)"
    )
    parser.add_argument("--normal", type=float, default=4.0, help="ticks/s per symbol, after")
    parser.add_argument("--seconds", type=float, default=30.0, help="overload window")
    parser.add_argument("--after", type=float, default=8.0, help="window after the fall")
    args = parser.parse_args()
    print("FeedPool overload benchmark", flush=True)
    report(args, measure(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
