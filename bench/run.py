"""``make bench``: the real backend on the simulator, real WebSocket clients, measured.

For each scenario the benchmark starts ``python -m backend`` (the simulator inside it, as the
desktop app runs it) and client processes (``bench/client.py``) that subscribe their symbols at
Quote. Once every client is subscribed and a warm-up has passed, it measures a window of
``--seconds``:

- published/s: ticks the adapters received and published, from their counters on ``SYS.POOL``;
- delivered/s: ticks the clients received, summed over the clients;
- lost: of one symbol in :data:`SAMPLE_EVERY` (the watched sample), the ticks an independent ZMQ
  subscriber saw published in the window that the client had not received by the end of the
  window plus a grace period. The sample keeps the observer from loading what it measures: a
  subscriber of every topic would have the backend send every tick on the bus as well, and even
  one symbol in 20 cost the backend about 3 us per tick at the opening peak (a bus send wakes
  ZeroMQ's I/O thread when ticks are sparse); one in 100 still checks 1,200 ticks a window there;
- p50, p99, max: latency from the simulator's exchange timestamp to the client's receipt, and
  ``bus p50/p99``, the same to the independent bus subscriber for the sample;
- conflated: ticks replaced with newer ones, by the adapters when they fell behind (counted on
  ``SYS.POOL``) and by the proxy for clients that fell behind;
- backend CPU (100% is one core; the ZMQ I/O threads run beside the event loop) and peak RSS,
  and the CPU of its simulator process and of the clients;
- backend and simulator us/tick: their CPU per published tick, steadier across hosts than a rate
  (floors: :data:`FLOOR_BACKEND_US` and :data:`FLOOR_SIMULATOR_US`), and the same in ceiling
  ticks (one second over the host's ceiling, below), which compare across hosts of different
  speeds;
- other load: CPU used on the machine by processes that are not part of the benchmark, in
  cores. Anything above a few percent means the figures are disturbed;
- of ceiling: delivered/s as a share of the host's ceiling, measured first in the same run: what
  one benchmark client receives from ``bench/ceiling.py``, a server that does nothing but push
  prebuilt frames.

A scenario of several accounts (``SIMULATOR_ACCOUNTS=angel,zerodha``, or ``ACCOUNTS``) has the
backend play one simulator process per account; the simulator CPU is theirs summed (every child
of the backend). Its backend cost per tick is held against one account's at the same total rate:
"no worse" when it exceeds that cost by no more than twice the standard error of the difference,
each cost's error taken from its window's one-second slots (:func:`compare_costs`). The issue's
pair (Angel One and Kite against one Kite account) differ in more than the accounts; the Dhan
pair differs in them alone (:func:`accounts_pair`).

A scenario marked ``wss`` serves the client API over TLS (``WEBSOCKET_TLS=auto``, a self-signed
certificate) and its clients pin the certificate's fingerprint; the suite runs the opening peak
both ways and prints the backend's CPU per tick side by side: the cost of TLS.

``python bench/run.py --help`` runs a scenario of your own.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import psutil
import zmq

from backend.bus.messages import (
    ClientsStats,
    ClientStats,
    ConnectionStats,
    MalformedMessage,
    PoolStats,
    Ready,
    decode,
)
from backend.feed import CLIENTS_TOPIC, POOL_TOPIC, QUOTE, tick_topic
from backend.instruments.master import load_master

API_KEY = "bench-api-key"
WARMUP_SECONDS = 2.0
GRACE_SECONDS = 1.5
CLIENT = Path(__file__).with_name("client.py")
CEILING = Path(__file__).with_name("ceiling.py")
#: One symbol in this many is watched for lost ticks, on the bus and at the clients.
SAMPLE_EVERY = 100
BUCKETS_PER_MS = 2  # latency histogram resolution, as in client.py
SAMPLE_SECONDS = 0.25
# The floors on this 2-core machine, from the issue.
FLOOR_P99_MS = 10.0
#: CPU per published tick, one client at Quote: the backend's and its simulator's.
FLOOR_BACKEND_US = 20.0
FLOOR_SIMULATOR_US = 10.0
#: Two accounts' ticks per second in all (12,000 symbols x 4/s), from the issue.
TWO_ACCOUNTS_RATE = 48_000.0

Histogram = dict[int, int]


@dataclass(frozen=True)
class Floor:
    """What a scenario must show: at least ``rate`` ticks/s published (within 2%), every one
    delivered (nothing lost, nothing shed or conflated) and p99 under ``p99_ms``."""

    rate: float
    p99_ms: float

    def text(self) -> str:
        return f"{self.rate:,.0f} ticks/s, all delivered, p99 < {self.p99_ms:g} ms"


@dataclass
class Scenario:
    name: str
    symbols: int  # subscribed in all
    rate: float  # ticks per second per symbol
    clients: int = 1
    split: bool = False  # True: the clients share the symbols out; False: each takes them all
    tls: bool = False  # True: the clients connect over wss://
    broker: str = "angel"  # the simulator's protocol: zerodha holds 3 x 3,000, dhan 5 x 5,000
    floor: Floor | None = None
    #: SIMULATOR_ACCOUNTS: one simulated account per broker named, in that order ("" for one).
    accounts: str = ""
    #: The scenario whose backend cost per tick this one's must be no worse than.
    costs_no_more_than: str = ""
    #: More of the backend's settings.
    settings: dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    scenario: Scenario
    seconds: float
    published: int = 0
    delivered: int = 0
    lost: int = 0
    conflated: int = 0
    latency: Histogram = field(default_factory=dict)
    bus_latency: Histogram = field(default_factory=dict)
    cpu: float = 0.0  # cores
    peak_rss: int = 0  # bytes
    simulator_cpu: float = 0.0
    clients_cpu: float = 0.0
    other_cpu: float = 0.0
    #: The backend's CPU per published tick (us) in each second of the window.
    cost_samples: list[float] = field(default_factory=list)

    def meets(self, floor: Floor) -> bool:
        return (
            self.published / self.seconds >= floor.rate * 0.98
            and self.lost == 0
            and self.conflated == 0
            and percentile(self.latency, 0.99) < floor.p99_ms
        )

    def cost_us(self, cpu: float) -> float:
        """Microseconds of ``cpu`` (cores) per published tick."""
        return cpu / (self.published / self.seconds) * 1e6 if self.published else float("nan")

    def row(self, ceiling: float) -> dict[str, str]:
        return {
            "scenario": self.scenario.name,
            "published/s": f"{self.published / self.seconds:,.0f}",
            "delivered/s": f"{self.delivered / self.seconds:,.0f}",
            "of ceiling": f"{self.delivered / self.seconds / ceiling:.1%}",
            "lost": f"{self.lost:,}",
            "conflated": f"{self.conflated:,}",
            "p50 ms": f"{percentile(self.latency, 0.5):.1f}",
            "p99 ms": f"{percentile(self.latency, 0.99):.1f}",
            "max ms": f"{percentile(self.latency, 1.0):.1f}",
            "bus p50/p99 ms": f"{percentile(self.bus_latency, 0.5):.1f}/"
            f"{percentile(self.bus_latency, 0.99):.1f}",
            "backend CPU": f"{self.cpu:.0%}",
            "backend us/tick": f"{self.cost_us(self.cpu):.1f}",
            "peak RSS": f"{self.peak_rss / 2**20:.0f} MB",
            "simulator CPU": f"{self.simulator_cpu:.0%}",
            "simulator us/tick": f"{self.cost_us(self.simulator_cpu):.1f}",
            "clients CPU": f"{self.clients_cpu:.0%}",
            "other load": f"{self.other_cpu:.0%}",
        }


def percentile(histogram: Histogram, fraction: float) -> float:
    """The latency in ms below which ``fraction`` of the histogram's ticks fall."""
    rank, seen = fraction * sum(histogram.values()), 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return (bucket + 1) / BUCKETS_PER_MS
    return float("nan")


def merge(into: Histogram, histogram: dict[Any, int]) -> None:
    for bucket, count in histogram.items():
        into[int(bucket)] = into.get(int(bucket), 0) + count


class BusCounter(threading.Thread):
    """An independent subscriber on the bus: the watched ticks' topic, exchange timestamp and
    receipt; the clients' statistics; and the adapters' tick counters over time.

    A tick's timestamp is read from its payload's bytes, without decoding the rest: the counter
    must keep up with the bus. The statistics are decoded to their types
    (:mod:`backend.bus.messages`); one that does not match is reported on stderr and skipped."""

    def __init__(self, endpoint: str, watched: list[tuple[str, str]]) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[bytes, int, float]] = []
        #: The latest ``SYS.CLIENTS`` and ``SYS.POOL``, once one has come.
        self.clients_stats: ClientsStats | None = None
        self.pool_stats: PoolStats | None = None
        #: ``(time ms, ticks the adapters had published, ticks they shed)``, from each SYS.POOL.
        self.counters: list[tuple[float, int, int]] = []
        self._socket = zmq.Context.instance().socket(zmq.SUB)
        self._socket.setsockopt(zmq.RCVHWM, 0)
        self._socket.setsockopt(zmq.LINGER, 0)
        topics = [tick_topic(exchange, symbol, QUOTE) for symbol, exchange in watched]
        for prefix in (*topics, CLIENTS_TOPIC, POOL_TOPIC):
            self._socket.setsockopt_string(zmq.SUBSCRIBE, prefix)
        self._socket.connect(endpoint)
        self._stopping = threading.Event()

    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        marker, clock = b'"timestamp":', time.time
        while not self._stopping.is_set():
            if not poller.poll(100):
                continue
            while True:
                try:
                    topic, payload = self._socket.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if topic in (CLIENTS_TOPIC.encode(), POOL_TOPIC.encode()):
                    self._take_stats(topic.decode(), payload)
                    continue
                start = end = payload.index(marker) + len(marker)
                while payload[end] in b"0123456789":
                    end += 1
                self.samples.append((topic, int(payload[start:end]), clock() * 1000))
        self._socket.close()

    def _take_stats(self, topic: str, payload: bytes) -> None:
        try:
            stats = decode(topic, payload)
        except MalformedMessage as exc:
            print(f"bench: ignored a {exc}", file=sys.stderr)
            return
        if isinstance(stats, ClientsStats):
            self.clients_stats = stats
            return
        self.pool_stats = stats
        shed = sum(c.ticks_shed for c in stats.connections)
        ticks = sum(c.ticks for c in stats.connections) - shed
        self.counters.append((stats.time * 1000, ticks, shed))

    def sessions(self) -> list[ClientStats]:
        """The clients of the latest ``SYS.CLIENTS`` (none before one has come)."""
        return self.clients_stats.sessions if self.clients_stats else []

    def connections(self) -> list[ConnectionStats]:
        """The connections of the latest ``SYS.POOL`` (none before one has come)."""
        return self.pool_stats.connections if self.pool_stats else []

    def stop(self) -> None:
        self._stopping.set()
        self.join()

    def ticks_between(self, start_ms: int, end_ms: int, column: int = 1) -> float:
        """Ticks the adapters published (``column`` 2: shed) from ``start_ms`` to ``end_ms``,
        read between their counters."""

        def at(moment: float) -> float:
            before = max((c for c in self.counters if c[0] <= moment), default=self.counters[0])
            after = min((c for c in self.counters if c[0] >= moment), default=self.counters[-1])
            if after[0] == before[0]:
                return before[column]
            share = (moment - before[0]) / (after[0] - before[0])
            return before[column] + share * (after[column] - before[column])

        return at(end_ms) - at(start_ms)

    def published(self, start_ms: int, end_ms: int) -> tuple[dict[bytes, int], Histogram]:
        """Watched ticks per topic stamped in ``[start_ms, end_ms)``, and their bus latency."""
        counts: dict[bytes, int] = {}
        histogram: Histogram = {}
        for topic, stamp, at in self.samples:
            if start_ms <= stamp < end_ms:
                counts[topic] = counts.get(topic, 0) + 1
                bucket = int((at - stamp) * BUCKETS_PER_MS)
                histogram[bucket] = histogram.get(bucket, 0) + 1
        return counts, histogram


def on_simulator(rate: float, broker: str = "angel") -> dict[str, str]:
    """The backend's settings to run its own simulator, playing ``broker``, at ``rate``, prices
    repeatable."""
    return {
        "SIMULATOR_BROKER": broker,
        "SIMULATOR_TICKS_PER_SECOND": str(rate),
        "SIMULATOR_SEED": "1",
    }


@contextmanager
def ready_process(
    what: str, command: list[str], **popen: Any
) -> Iterator[tuple[subprocess.Popen, dict[str, Any]]]:
    """``command`` started, once it printed its ``ready`` line: the process and that line.
    ``what`` names it if it fails to start; it is stopped (SIGTERM) afterwards."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, **popen)
    try:
        ready = json.loads(process.stdout.readline() or b"{}")
        if ready.get("event") != "ready":
            raise SystemExit(f"{what} did not start: {ready}")
        yield process, ready
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


@contextmanager
def backend_process(
    home: Path, settings: dict[str, str]
) -> Iterator[tuple[subprocess.Popen, Ready]]:
    """``python -m backend`` with ``settings`` (see :func:`on_simulator`), its files under
    ``home``; the process and its ready line."""
    env = {
        **os.environ,
        "WEBSOCKET_PORT": "0",
        "ZMQ_PORT": "0",
        "FEEDPOOL_API_KEY": API_KEY,
        **{name: str(home / name.lower()) for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME")},
        **settings,
    }
    log = home / "backend.log"
    with (
        log.open("wb") as stderr,
        ready_process(
            f"the backend (see {log})",
            [sys.executable, "-m", "backend"],
            cwd=home,
            env=env,
            stdin=subprocess.DEVNULL,
            stderr=stderr,
        ) as (process, ready),
    ):
        yield process, msgspec.convert(ready, Ready)


@contextmanager
def client_processes(
    url: str, shares: list[list], home: Path, fingerprint: str | None = None
) -> Iterator[list[subprocess.Popen]]:
    """One ``bench/client.py`` per share of symbols, each subscribed when this yields, on the
    client API at ``url`` (pinning the certificate's ``fingerprint``, over TLS)."""
    pin = [fingerprint] if fingerprint else []
    clients = []
    try:
        for n, share in enumerate(shares):
            path = home / f"symbols-{n}.json"
            path.write_text(json.dumps(share))
            clients.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(CLIENT),
                        url,
                        API_KEY,
                        str(QUOTE),
                        str(path),
                        *pin,
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for client in clients:
            subscribed = read_event(client, "subscribed")
            if subscribed["failed"]:
                raise SystemExit(f"a client could not subscribe everything: {subscribed}")
        yield clients
    finally:
        for client in clients:
            if client.poll() is None:
                client.kill()
            client.wait()


@contextmanager
def ceiling_server() -> Iterator[str]:
    """``bench/ceiling.py`` running; its URL."""
    command = [sys.executable, str(CEILING)]
    with ready_process("the ceiling server", command, stdin=subprocess.DEVNULL) as (_, ready):
        yield ready["ws"]


def host_ceiling(seconds: float, symbols: list[tuple[str, str]]) -> float:
    """Ticks per second one benchmark client receives from the ceiling server."""
    with (
        tempfile.TemporaryDirectory(prefix="feedpool-bench-") as temporary,
        ceiling_server() as url,
        client_processes(url, [symbols], Path(temporary)) as clients,
    ):
        start_ms = int((time.time() + WARMUP_SECONDS) * 1000)
        window = {"start_ms": start_ms, "end_ms": start_ms + int(seconds * 1000)}
        clients[0].stdin.write(json.dumps({**window, "grace_s": GRACE_SECONDS, "watch": []}))
        clients[0].stdin.write("\n")
        clients[0].stdin.flush()
        return read_event(clients[0], "result")["received"] / seconds


def read_event(process: subprocess.Popen, event: str) -> dict[str, Any]:
    line = process.stdout.readline()
    message = json.loads(line) if line else {}
    if message.get("event") != event:
        raise SystemExit(f"a client failed: expected {event!r}, got {line!r}")
    return message


class Usage:
    """CPU time of the benchmark's processes and of the whole machine; the backend's peak RSS."""

    def __init__(self, backend: int, clients: list[int], simulator: int | None = None) -> None:
        """``simulator``: the simulator's process when the backend did not start it."""
        self.backend = psutil.Process(backend)
        if simulator is None:
            self.simulator = self.backend.children(recursive=True)  # and multiprocessing's helper
        else:
            self.simulator = [psutil.Process(simulator)]
        self.clients = [psutil.Process(pid) for pid in clients]
        self.ours = [self.backend, *self.simulator, *self.clients, psutil.Process()]
        self.peak_rss = 0
        self.backend_cpu: list[tuple[float, float]] = []

    @staticmethod
    def _cpu(processes: list[psutil.Process]) -> float:
        return sum(sum(p.cpu_times()[:2]) for p in processes)

    def snapshot(self) -> tuple[float, ...]:
        """CPU seconds of the backend, its simulator, the clients, all ours and the machine."""
        machine = psutil.cpu_times()
        return (
            self._cpu([self.backend]),
            self._cpu(self.simulator),
            self._cpu(self.clients),
            self._cpu(self.ours),
            sum(machine) - machine.idle - getattr(machine, "iowait", 0.0),
        )

    def sample_until(self, deadline_ms: float) -> None:
        """Sample until ``deadline_ms``: the backend's peak RSS, and its CPU seconds over time
        (:attr:`backend_cpu`, ``(time ms, CPU seconds)``)."""
        while time.time() * 1000 < deadline_ms:
            self.peak_rss = max(self.peak_rss, self.backend.memory_info().rss)
            self.backend_cpu.append((time.time() * 1000, self._cpu([self.backend])))
            time.sleep(SAMPLE_SECONDS)


def run(scenario: Scenario, seconds: float, symbols: list[tuple[str, str]]) -> Result:
    """Start the backend and the clients of ``scenario`` and measure one window."""
    chosen = symbols[: scenario.symbols]
    if scenario.split:
        shares = [chosen[n :: scenario.clients] for n in range(scenario.clients)]
    else:
        shares = [chosen] * scenario.clients
    result = Result(scenario, seconds)
    with tempfile.TemporaryDirectory(prefix="feedpool-bench-") as temporary:
        home = Path(temporary)
        watched = chosen[::SAMPLE_EVERY]
        settings = {
            **on_simulator(scenario.rate, scenario.broker),
            "SIMULATOR_ACCOUNTS": scenario.accounts,
            "WEBSOCKET_TLS": "auto" if scenario.tls else "off",
            **scenario.settings,
        }
        with backend_process(home, settings) as (backend, ready):
            counter = BusCounter(ready.zmq, watched)
            counter.start()
            with client_processes(ready.ws, shares, home, ready.tls_fingerprint) as clients:
                start_ms = int((time.time() + WARMUP_SECONDS) * 1000)
                end_ms = start_ms + int(seconds * 1000)
                window = {
                    "start_ms": start_ms,
                    "end_ms": end_ms,
                    "grace_s": GRACE_SECONDS,
                    "watch": [f"{exchange}_{symbol}" for symbol, exchange in watched],
                }
                for client in clients:
                    client.stdin.write(json.dumps(window) + "\n")
                    client.stdin.flush()
                usage = Usage(backend.pid, [client.pid for client in clients])
                usage.sample_until(start_ms)
                before = usage.snapshot()
                usage.sample_until(end_ms)
                after = usage.snapshot()
                outcomes = [read_event(client, "result") for client in clients]
            counter.stop()
    backend, simulator, clients, ours, machine = (
        (b - a) / seconds for a, b in zip(before, after, strict=True)
    )
    result.cpu, result.simulator_cpu, result.clients_cpu = backend, simulator, clients
    result.other_cpu = max(0.0, machine - ours)
    result.peak_rss = usage.peak_rss
    published, result.bus_latency = counter.published(start_ms, end_ms)
    result.published = round(counter.ticks_between(start_ms, end_ms))
    for share, outcome in zip(shares, outcomes, strict=True):
        for symbol, exchange in set(share) & set(watched):
            expected = published.get(tick_topic(exchange, symbol, QUOTE).encode(), 0)
            result.lost += max(0, expected - outcome["sampled"].get(f"{exchange}_{symbol}", 0))
        result.delivered += outcome["received"]
        merge(result.latency, outcome["histogram"])
    result.conflated = sum(s.conflated for s in counter.sessions())
    result.conflated += round(counter.ticks_between(start_ms, end_ms, column=2))
    result.cost_samples = per_second_costs(usage.backend_cpu, counter, start_ms, end_ms)
    return result


def per_second_costs(
    cpu: list[tuple[float, float]], counter: BusCounter, start_ms: int, end_ms: int
) -> list[float]:
    """The backend's CPU per published tick (us) in each whole second from ``start_ms`` to
    ``end_ms``, from its CPU samples ``(time ms, CPU seconds)``, each second between the samples
    nearest its ends."""
    costs = []
    for second in range(start_ms, end_ms - 999, 1000):
        first = min(cpu, key=lambda sample: abs(sample[0] - second))
        last = min(cpu, key=lambda sample: abs(sample[0] - second - 1000))
        ticks = counter.ticks_between(round(first[0]), round(last[0]))
        if ticks > 0:
            costs.append((last[1] - first[1]) / ticks * 1e6)
    return costs


def mean_and_error(samples: list[float]) -> tuple[float, float]:
    """The mean of ``samples`` and its standard error."""
    mean = statistics.fmean(samples)
    error = statistics.stdev(samples) / math.sqrt(len(samples)) if len(samples) > 1 else math.nan
    return mean, error


def compare_costs(result: Result, baseline: Result) -> str:
    """Whether ``result``'s backend cost per tick is no worse than ``baseline``'s, in a line: no
    worse when above it by no more than twice the standard error of the difference of their
    per-second means (what the seconds of one window scatter by)."""
    (cost, error), (base, base_error) = map(
        mean_and_error, (result.cost_samples, baseline.cost_samples)
    )
    noise = 2 * math.hypot(error, base_error)
    return (
        f"Cost for '{result.scenario.name}' against '{baseline.scenario.name}' (floor: no worse): "
        f"{cost:.2f} +- {error:.2f} us/tick against {base:.2f} +- {base_error:.2f} "
        f"({cost - base:+.2f}, {cost / base - 1:+.1%}; noise {noise:.2f}): "
        f"{'met' if cost - base <= noise else 'NOT met'}"
    )


def table(results: list[Result], ceiling: float) -> str:
    rows = [r.row(ceiling) for r in results]
    widths = {c: max(len(c), *(len(row[c]) for row in rows)) for c in rows[0]}
    lines = [" | ".join(c.ljust(w) for c, w in widths.items())]
    lines.append("-|-".join("-" * w for w in widths.values()))
    lines += [" | ".join(row[c].ljust(w) for c, w in widths.items()) for row in rows]
    return "\n".join(lines)


def suite(symbols: int, rate: float) -> list[Scenario]:
    """The opening peak with 1 client (over ws and wss) and 10, one client at rising rates, and
    the headroom: what three Zerodha connections carry (9,000 symbols x 5/s) to one client, and
    what five Dhan connections carry (25,000 symbols x 2/s, and x 4/s)."""
    peak, offered = f"{symbols} x {rate:g}/s", symbols * rate
    return [
        Scenario(f"1 client, {peak}", symbols, rate, floor=Floor(offered, FLOOR_P99_MS)),
        Scenario(f"1 client, {peak}, wss", symbols, rate, tls=True),
        Scenario(f"10 clients sharing {peak}", symbols, rate, clients=10, split=True),
        Scenario(f"10 clients, each {peak}", symbols, rate, clients=10, floor=Floor(offered, 50)),
        *(Scenario(f"1 client, {symbols} x {r:g}/s", symbols, r) for r in (6, 8, 10, 12)),
        Scenario(
            "headroom: 1 client, 9000 x 5/s (Zerodha)",
            9000,
            5.0,
            broker="zerodha",
            floor=Floor(45_000, 50),
        ),
        Scenario(
            "headroom: 1 client, 25000 x 2/s (Dhan)",
            25000,
            2.0,
            broker="dhan",
            floor=Floor(50_000, 50),
        ),
        Scenario("headroom: 1 client, 25000 x 4/s (Dhan)", 25000, 4.0, broker="dhan"),
        *accounts_pair(),
    ]


def accounts_pair() -> list[Scenario]:
    """Two accounts, Angel One (3 x 1,000) and Kite (3 x 3,000), at 12,000 symbols x 4/s to one
    client, and beside it one Kite account at the same total rate (9,000 symbols x 5.33/s), whose
    backend cost per tick the two accounts' must not exceed. These differ in more than the
    accounts (more symbols, twice the connections, Angel One's dearer protocol), so the suite
    also holds the accounts alone against each other: 9,000 Dhan symbols at the same rate on
    four connections of one account, and on two connections each of two accounts."""
    rate = TWO_ACCOUNTS_RATE / 9000
    one = f"accounts: 1 account, 9000 x {rate:.2f}/s (Kite)"
    one_dhan = f"accounts: 1 Dhan account, 9000 x {rate:.2f}/s on 4 connections"
    half = {"broker": "dhan", "MAX_WEBSOCKET_CONNECTIONS": "2", "MAX_SYMBOLS_PER_WEBSOCKET": "2250"}
    two_dhan = [{"name": f"dhan-{n}", **half} for n in (1, 2)]
    return [
        Scenario(one, 9000, rate, broker="zerodha"),
        Scenario(
            "accounts: 2 accounts, 12000 x 4/s (Angel One 3,000 + Kite 9,000)",
            12_000,
            TWO_ACCOUNTS_RATE / 12_000,
            accounts="angel,zerodha",
            floor=Floor(TWO_ACCOUNTS_RATE, FLOOR_P99_MS),
            costs_no_more_than=one,
        ),
        Scenario(
            one_dhan,
            9000,
            rate,
            broker="dhan",
            settings={"MAX_WEBSOCKET_CONNECTIONS": "4", "MAX_SYMBOLS_PER_WEBSOCKET": "2250"},
        ),
        Scenario(
            f"accounts: 2 Dhan accounts, 9000 x {rate:.2f}/s on 2 + 2 connections",
            9000,
            rate,
            settings={"ACCOUNTS": json.dumps(two_dhan)},
            floor=Floor(TWO_ACCOUNTS_RATE, FLOOR_P99_MS),
            costs_no_more_than=one_dhan,
        ),
    ]


def print_tls_cost(results: list[Result]) -> None:
    """Backend CPU per tick of each scenario over ws beside the same over wss, if both ran."""
    by_name = {result.scenario.name: result for result in results}
    for result in results:
        plain = by_name.get(result.scenario.name.removesuffix(", wss"))
        if result.scenario.tls and plain is not None and not plain.scenario.tls:
            ws, wss = plain.cost_us(plain.cpu), result.cost_us(result.cpu)
            print(
                f"TLS for '{plain.scenario.name}': backend {ws:.1f} us/tick over ws, "
                f"{wss:.1f} over wss ({wss - ws:+.1f} us/tick, {wss / ws - 1:+.0%})"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window")
    parser.add_argument("--symbols", type=int, default=3000, help="symbols subscribed in all")
    parser.add_argument("--rate", type=float, default=4.0, help="ticks per second per symbol")
    parser.add_argument("--clients", type=int, help="run one scenario with this many clients")
    parser.add_argument("--split", action="store_true", help="clients share the symbols out")
    parser.add_argument("--tls", action="store_true", help="clients connect over wss://")
    parser.add_argument(
        "--broker",
        default="angel",
        help="the simulator's protocol: zerodha holds 3 x 3,000, dhan 5 x 5,000",
    )
    parser.add_argument(
        "--accounts", default="", help="one simulated account per broker named: angel,zerodha"
    )
    parser.add_argument(
        "--only", default="", help="run only the suite's scenarios whose name holds this text"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    symbols = [(i.symbol, i.exchange) for i in load_master() if i.exchange in ("NSE", "NFO")]
    if args.clients:
        name = f"{args.clients} client(s), {args.symbols} x {args.rate:g}/s"
        name += ", wss" if args.tls else ""
        name += f", accounts {args.accounts}" if args.accounts else ""
        scenarios = [
            Scenario(
                name,
                args.symbols,
                args.rate,
                args.clients,
                args.split,
                args.tls,
                args.broker,
                accounts=args.accounts,
            )
        ]
    else:
        scenarios = [s for s in suite(args.symbols, args.rate) if args.only in s.name]
        if not scenarios:
            raise SystemExit(f"no scenario of the suite has {args.only!r} in its name")
    print(f"FeedPool benchmark: {os.cpu_count()} CPUs, {args.seconds:g} s windows", flush=True)
    ceiling = host_ceiling(args.seconds, symbols[: args.symbols])
    print(f"Host ceiling: one client receives {ceiling:,.0f} ticks/s", flush=True)
    results = []
    for scenario in scenarios:
        results.append(run(scenario, args.seconds, symbols))
        print(f"\n{table(results[-1:], ceiling)}", flush=True)
    print(f"\nAll scenarios:\n{table(results, ceiling)}")
    print()
    for result in results:
        floor = result.scenario.floor
        if floor is not None:
            verdict = "met" if result.meets(floor) else "NOT met"
            print(f"Floor for '{result.scenario.name}' ({floor.text()}): {verdict}")
    ceiling_tick_us = 1e6 / ceiling
    print(
        f"A ceiling tick on this host: {ceiling_tick_us:.2f} us (one second over the ceiling). "
        "Costs in ceiling ticks compare across hosts."
    )
    for result in results:
        backend, simulator = result.cost_us(result.cpu), result.cost_us(result.simulator_cpu)
        print(
            f"Cost for '{result.scenario.name}': backend {backend:.1f} us/tick "
            f"({'met' if backend <= FLOOR_BACKEND_US else 'NOT met'}, floor {FLOOR_BACKEND_US:g};"
            f" {backend / ceiling_tick_us:.1f} ceiling ticks), simulator {simulator:.1f} us/tick "
            f"({'met' if simulator <= FLOOR_SIMULATOR_US else 'NOT met'}, "
            f"floor {FLOOR_SIMULATOR_US:g}; {simulator / ceiling_tick_us:.1f} ceiling ticks)"
        )
    print_tls_cost(results)
    by_name = {result.scenario.name: result for result in results}
    for result in results:
        baseline = by_name.get(result.scenario.costs_no_more_than)
        if baseline is not None:
            print(compare_costs(result, baseline))
    if args.json:
        rows = [r.row(ceiling) for r in results]
        args.json.write_text(json.dumps({"ceiling": ceiling, "scenarios": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
