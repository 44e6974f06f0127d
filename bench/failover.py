"""Failover between two broker accounts, timed: Kite's session ends, Angel One carries its
symbols, Kite logs in again and takes them back make-before-break.

Two real exchange simulators, each a process of its own as a broker is (Kite first in the
trader's order, then Angel One), and in this process, as ``tests/test_accounts.py`` has them,
each account's pool, :class:`~backend.pool.accounts.PooledAccounts` over them, the client API on
a real WebSocket and a client reading every tick (``bench/client.py``'s). (Simulators in this
process would tick less while the pool works, their clocks sharing its event loop.) By default
Kite holds 3 x 1,000 symbols (a limit below its 3 x 3,000, so that the pool, the client API and
the client, all in this process, stay well inside one core) and Angel One (3 x 1,000) holds 500
of its own, so 2,500 of Kite's find room there; every symbol ticks 3 times a second on average,
at random moments.

- **Failover.** Kite's sessions expire (the simulator ends them as the broker does each
  morning). For each symbol moved (``SYS.MOVES``), the time from the expiry to its first tick at
  the client that Angel One carried: p50, p99 and max, floor p99 < 3 s.
- **Return.** A Kite login through the simulator's login page, and ``set_session`` with the new
  token. The time from ``set_session`` to every moved symbol back on Kite (the last ``return``
  batch; the pool lets the account settle for 2 s first). Per returned symbol, its gap across the
  switch at the client: from its last tick through Angel One to its first through Kite. Kite's
  first tick comes at a moment Angel One's ticks know nothing of, so a switch that adds nothing
  shows the time since Angel One's last tick at that moment; Angel One's own symbols, which it
  carries throughout, show that time at the same moments (its pace drifts with its load, so an
  earlier stretch of the run would not do). Floor: the switch adds no more on average than the
  measurement's noise (twice the standard error) and one turn of the event loop, and no
  duplicate: no tick Angel One carried reaches the client after Kite's first. The report also
  gives the ordinary gaps and the client's longest wait for any tick during the return.

Which account carried a tick is noted as it is published: each account's connections publish
through a :class:`CarrierTap` of the one bus publisher, keyed by subscription and exchange
timestamp, which the client's receipts are joined on.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import math
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import picows
import zmq
import zmq.asyncio

from backend.brokers import BROKERS
from backend.brokers.session import FixedSession
from backend.bus.messages import SymbolsMoved, decode
from backend.bus.publisher import ZmqPublisher
from backend.feed import FAILOVER, MOVES_TOPIC, QUOTE, RETURN
from backend.instruments.master import load_master
from backend.instruments.sources import served_master
from backend.pool.accounts import PooledAccounts
from backend.pool.connection_pool import ConnectionPool
from backend.pool.ledger import Account
from backend.runtime.event_loop import run
from backend.runtime.settings import Settings
from backend.simulator import SimulatorCredentials

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from carrier_tap import CarrierTap
from client import Client, subscribe
from logins import kite_login
from proxy_client import API_KEY, eventually, start_proxy
from simulator_process import StandaloneSimulator

FLOOR_FAILOVER_P99_S = 3.0
#: What the event loop's turn may add to a gap: one read of the sockets.
SCHEDULING_MS = 20
#: Symbols Angel One carries throughout, looked at per switch.
UNMOVED_PER_SWITCH = 5
#: How long every symbol ticks before the expiry, and after the last return: gaps to compare.
WARM_SECONDS = 2.0
WITHIN_SECONDS = 30.0

Key = bytes  # a subscription as the client names it: b"NSE_SBIN"
Receipt = tuple[Key, int, float]  # (subscription, exchange timestamp ms, receipt time ms)


async def start_accounts(
    publisher: ZmqPublisher,
    carried: dict,
    specs: list[tuple[str, str, int]],
    rate: float,
    workdir: Path,
) -> tuple[PooledAccounts, list[StandaloneSimulator]]:
    """One simulator process and pool per ``(name, broker, symbols per connection)`` of
    ``specs`` (3 connections each), in that order, as one pool; its connections publish through
    :class:`CarrierTap`."""
    made, simulators, first = [], [], 1
    for number, (name, broker_name, per_connection) in enumerate(specs):
        credentials = SimulatorCredentials(client_code=f"ACCOUNT{number + 1}")
        simulator = await StandaloneSimulator.start(
            workdir,
            *("--broker", broker_name, "--client-code", credentials.client_code),
            *("--ticks-per-second", str(rate), "--seed", str(number + 1)),
        )
        simulators.append(simulator)
        broker = BROKERS[broker_name]
        session = FixedSession(broker.simulator_credentials(credentials), broker.label)
        tap = CarrierTap(publisher, name, carried)
        url, rest = simulator.ready["url"], simulator.ready["rest"]

        def adapter(index: int, broker=broker, url=url, session=session, tap=tap):
            return broker.adapter(index, url, session, publisher=tap)

        pool = ConnectionPool(
            broker_name,
            credentials.client_code,
            await served_master(broker, simulator.ready["master"]),
            adapter,
            publisher,
            max_symbols_per_connection=per_connection,
            max_connections=3,
            session=session,
            account=name,
            first_connection=first,
        )
        first += 3
        values = Settings().replace(**broker.simulator_settings(credentials, rest)).broker_values
        made.append(Account(name, broker_name, pool, values))
    return PooledAccounts(made, publisher), simulators


class Moves:
    """``SYS.MOVES`` from the bus, as they come."""

    def __init__(self, endpoint: str) -> None:
        self.batches: list[SymbolsMoved] = []
        self._socket = zmq.asyncio.Context.instance().socket(zmq.SUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt_string(zmq.SUBSCRIBE, MOVES_TOPIC)
        self._socket.connect(endpoint)
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        while True:
            topic, payload = await self._socket.recv_multipart()
            self.batches.append(decode(topic.decode(), payload))

    def symbols(self, kind: str) -> set[Key]:
        """The symbols moved in batches of ``kind``, as the client names them."""
        moved = (s for b in self.batches if b.kind == kind for s in b.symbols)
        return {s.replace(":", "_", 1).encode() for s in moved}

    def close(self) -> None:
        self._task.cancel()
        self._socket.close()


class FirstCarried:
    """Per subscription, the index in ``seen`` of its first tick received from now on that
    ``account`` carried (:attr:`first`), read on from where :meth:`update` stopped."""

    def __init__(self, seen: list[Receipt], carried: dict, account: str) -> None:
        self.first: dict[Key, int] = {}
        self._seen, self._carried, self._account = seen, carried, account
        self._next = len(seen)

    def update(self) -> dict[Key, int]:
        seen, first, carried, account = self._seen, self.first, self._carried, self._account
        for n in range(self._next, len(seen)):
            key, stamp, _ = seen[n]
            if key not in first and carried.get((key, stamp)) == account:
                first[key] = n
        self._next = len(seen)
        return first


@dataclass
class Observed:
    """What the client saw, and when things happened (ms)."""

    seen: list[Receipt]
    carried: dict[tuple[Key, int], str]
    moved: set[Key]
    #: Per moved symbol, the index in ``seen`` of its first tick through Angel One, and of its
    #: first on Kite again.
    on_angel: dict[Key, int]
    home: dict[Key, int]
    expired_ms: float
    asked_ms: float
    back_ms: float
    #: Angel One's own symbols: never moved, they tick through the return as before.
    unmoved: set[Key]


@dataclass
class Gaps:
    """Per returned symbol, its gap across the switch (ms); every gap between two ticks of a
    symbol that one account carried with no move or outage between them (ms); and the ticks
    Angel One carried to the client after Kite's first of the same symbol."""

    switch: dict[Key, float] = field(default_factory=dict)
    ordinary: list[float] = field(default_factory=list)
    duplicates: int = 0


def gaps(observed: Observed) -> Gaps:
    found = Gaps()
    home, carried, expired = observed.home, observed.carried, observed.expired_ms
    previous: dict[Key, tuple[float, str | None]] = {}
    for n, (key, stamp, at) in enumerate(observed.seen):
        account = carried.get((key, stamp))
        if key in home and n > home[key] and account == "angel":
            found.duplicates += 1
            continue
        if key in previous:
            last_at, last_account = previous[key]
            if home.get(key) == n:
                found.switch[key] = at - last_at
            elif account == last_account and not last_at <= expired < at:
                found.ordinary.append(at - last_at)
        previous[key] = (at, account)
    return found


def unmoved_waits(observed: Observed, switches: list[float]) -> list[float]:
    """At each moment of ``switches`` (ms), the time since the last tick of each of a few
    symbols Angel One carries throughout: what a switch at that moment shows if it adds
    nothing, from the same simulator at the same time (its pace is not the same all run long:
    it drifts as its load does)."""
    times: dict[Key, list[float]] = {}
    for key, _, at in observed.seen:
        if key in observed.unmoved:
            times.setdefault(key, []).append(at)
    streams = list(times.values())
    waits = []
    for n, moment in enumerate(switches):
        for stream in streams[n % len(streams) :][:UNMOVED_PER_SWITCH]:
            before = bisect.bisect_left(stream, moment)
            if before:
                waits.append(moment - stream[before - 1])
    return waits


def figures(values: list[float]) -> str:
    """p50, p99 and max of ``values`` (ms), in seconds."""
    if not values:
        return "none"
    p50, p99 = np.percentile(values, [50, 99]) / 1000
    return f"p50 {p50:.2f} s, p99 {p99:.2f} s, max {max(values) / 1000:.2f} s"


async def observe(kite_per_connection: int, angel_own: int, rate: float) -> Observed:
    """Run the accounts, the failover and the return; what the client saw."""
    everything = [(i.symbol, i.exchange) for i in load_master()]
    kite_symbols = everything[: 3 * kite_per_connection]
    angel_symbols = everything[len(kite_symbols) : len(kite_symbols) + angel_own]
    publisher = ZmqPublisher(port=0)
    carried: dict[tuple[Key, int], str] = {}
    specs = [("kite", "zerodha", kite_per_connection), ("angel", "angel", 1000)]
    workdir = Path(tempfile.mkdtemp(prefix="feedpool-failover-"))
    pooled, (kite, angel) = await start_accounts(publisher, carried, specs, rate, workdir)
    proxy = await start_proxy(pooled)
    moves = Moves(publisher.endpoint)
    transport, client = await picows.ws_connect(Client, proxy.url, max_frame_size=2**24)
    try:
        client.watched = {f"{e}_{s}".encode() for s, e in kite_symbols + angel_symbols}
        await subscribe(client, API_KEY, QUOTE, kite_symbols + angel_symbols)
        loads = ", ".join(f"{a.name} {a.pool.total_symbols:,}" for a in pooled.accounts)
        print(
            f"Failover benchmark: Kite 3 x {kite_per_connection:,} symbols, Angel One 3 x 1,000 "
            f"with {angel_own:,} of its own, {rate:g} ticks/s each at random moments; "
            f"placed: {loads}",
            flush=True,
        )
        await eventually(lambda: len({k for k, _, _ in client.seen}) == len(client.watched))
        await asyncio.sleep(WARM_SECONDS)  # ordinary gaps of every symbol, to compare with

        movable = min(len(kite_symbols), 3000 - angel_own)
        on_angel = FirstCarried(client.seen, carried, "angel")
        expired = time.time() * 1000
        await kite.command(command="expire_sessions")
        await eventually(lambda: len(moves.symbols(FAILOVER)) >= movable, WITHIN_SECONDS)
        moved = moves.symbols(FAILOVER)
        await eventually(lambda: on_angel.update().keys() >= moved, WITHIN_SECONDS)

        token = await kite_login(SimulatorCredentials(client_code="ACCOUNT1"), kite.ready["rest"])
        on_kite = FirstCarried(client.seen, carried, "kite")
        asked = time.time() * 1000
        client.send(
            {"action": "set_session", "account": "kite", "settings": {"KITE_ACCESS_TOKEN": token}}
        )
        while (reply := await client.replies.get()).get("type") != "set_session":
            pass
        if reply.get("status") != "success":
            raise SystemExit(f"set_session failed: {reply}")
        await eventually(lambda: moves.symbols(RETURN) >= moved, WITHIN_SECONDS)
        await asyncio.sleep(WARM_SECONDS)  # the ticks after the return, to look at
        back = max(b.time for b in moves.batches if b.kind == RETURN) * 1000
        home = {key: n for key, n in on_kite.update().items() if key in moved}
        return Observed(
            list(client.seen),
            carried,
            moved,
            on_angel.first,
            home,
            expired,
            asked,
            back,
            {f"{e}_{s}".encode() for s, e in angel_symbols},
        )
    finally:
        transport.disconnect()
        moves.close()
        await proxy.close()
        await pooled.close()
        for simulator in (kite, angel):
            await simulator.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        publisher.close()


def report(observed: Observed) -> None:
    seen, moved = observed.seen, observed.moved
    failover = [seen[observed.on_angel[k]][2] - observed.expired_ms for k in moved]
    found = gaps(observed)
    switch = list(found.switch.values())
    missing = len(moved) - len(switch)
    # Kite's first tick of a symbol comes at a moment Angel One's ticks of it know nothing of:
    # the gap across the switch is the time since Angel One's last tick at that moment, which
    # symbols Angel One carries throughout show at the same moments.
    moments = [seen[observed.home[k]][2] for k in found.switch]
    expected = unmoved_waits(observed, moments)
    added = statistics.fmean(switch) - statistics.fmean(expected)
    noise = 2 * math.hypot(
        statistics.stdev(switch) / math.sqrt(len(switch)),
        statistics.stdev(expected) / math.sqrt(len(expected)),
    )
    print(f"Kite's sessions expired: {len(moved):,} symbols moved to Angel One")
    print(f"  expiry to each one's first tick through Angel One: {figures(failover)}")
    back = observed.back_ms - observed.asked_ms
    print(
        f"Kite logged in again: every symbol back on Kite {back:,.0f} ms after set_session (the "
        "account's settling time included)"
    )
    print(
        f"  gap across the switch: {figures(switch)}, mean {statistics.fmean(switch):.0f} ms; "
        f"ordinary gaps ({len(found.ordinary):,} on one account): {figures(found.ordinary)}, "
        f"mean {statistics.fmean(found.ordinary):.0f} ms"
    )
    during = sorted(at for _, _, at in seen if at >= observed.asked_ms)
    pause = max(b - a for a, b in itertools.pairwise(during))
    print(f"  the client's longest wait for any tick from set_session on: {pause:.0f} ms")
    print(
        "  at the same moments, the time since the last tick of symbols Angel One carried "
        f"throughout (what a switch that adds nothing shows): {figures(expected)}, mean "
        f"{statistics.fmean(expected):.0f} ms; the switch adds {added:+.0f} ms on average "
        f"(noise {noise:.0f} ms); returned without a tick on Kite: {missing}; duplicates: "
        f"{found.duplicates}"
    )
    failover_met = len(failover) == len(moved) and np.percentile(failover, 99) < (
        FLOOR_FAILOVER_P99_S * 1000
    )
    return_met = missing == 0 and found.duplicates == 0 and added <= noise + SCHEDULING_MS
    print(
        f"Floor for the failover (p99 < {FLOOR_FAILOVER_P99_S:g} s, every moved symbol): "
        f"{'met' if failover_met else 'NOT met'}"
    )
    print(
        "Floor for the return (0 s of gap beyond the symbols' own spacing: the switch adds no "
        f"more than the noise and one turn of the event loop, {SCHEDULING_MS} ms; no "
        "duplicate): "
        f"{'met' if return_met else 'NOT met'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kite", type=int, default=1000, help="Kite's symbols per connection")
    parser.add_argument("--angel-own", type=int, default=500, help="Angel One's own symbols")
    parser.add_argument("--rate", type=float, default=3.0, help="ticks per second per symbol")
    args = parser.parse_args()
    report(run(observe(args.kite, args.angel_own, args.rate)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
