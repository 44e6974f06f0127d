"""Failover between broker accounts: symbols move off an account that cannot serve them, and back.

- **Failover.** A connection refused for its session (``session_expired``), or down longer than
  ``FAILOVER_SECONDS``, has its symbols placed on the other accounts that list them and have room
  (their free room only: never room their own symbols hold), in the trader's order of accounts
  and in the order the symbols were first subscribed, at the modes held. What finds no room
  stays, and its holders are told it is down; moved symbols tick on without a word.
- **Return, make-before-break.** Once the account has been connected for
  :data:`RETURN_SETTLE_SECONDS` with a live session, its symbols are subscribed on it again while
  the other account still carries them. The first tick of each on its own account mutes the
  other account's copy before it is published, and the other account lets go of it after: a
  client sees neither a duplicate nor a gap. A symbol whose first tick does not come within
  :data:`RETURN_TIMEOUT` switches all the same.
- **Displacement.** An account's own new symbols come before borrowed ones: when it needs the
  room, the most recently subscribed borrowed symbols go back to their own account to wait for
  it, and their holders are told (:meth:`Failover.make_room`).

Every move batch is one ``SYS.MOVES`` message, one log line and a count on its account.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Hashable

from backend.brokers.adapter import BrokerAdapter
from backend.bus.messages import SymbolsMoved
from backend.feed import (
    CONNECTED,
    DISPLACED,
    FAILOVER,
    RECONNECTING,
    RETURN,
    SESSION_EXPIRED,
    tick_topic,
)
from backend.logs.wording import counted
from backend.pool.in_flight import in_rounds
from backend.pool.ledger import Account, Key, Ledger

log = logging.getLogger("feedpool.pool")

RETURN_SETTLE_SECONDS = 2.0
RETURN_TIMEOUT = 10.0

#: ``(message, holders)``: tell the holders their symbols are not ticking, and why.
Notify = Callable[[str, set[Hashable]], None]


class Failover:
    """Watches every account's connections and moves their symbols as the rules above say."""

    def __init__(
        self,
        accounts: list[Account],
        ledger: Ledger,
        notify: Notify,
        announce: Callable[[SymbolsMoved], None],
        *,
        failover_seconds: float,
        settle_seconds: float = RETURN_SETTLE_SECONDS,
    ) -> None:
        self._accounts = accounts
        self._ledger = ledger
        self._notify = notify
        self._announce = announce
        self._failover_seconds = failover_seconds
        self._settle_seconds = settle_seconds
        self._timers: dict[tuple[Account, int], asyncio.TimerHandle] = {}
        self._returns: dict[Account, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        for account in accounts:
            account.pool.state_listeners.append(functools.partial(self._on_state, account))

    # -- connection states -------------------------------------------------------------------

    def _on_state(self, account: Account, adapter: BrokerAdapter, state: str, reason: str) -> None:
        index = adapter.index
        if state == CONNECTED:
            self._cancel(self._timers.pop((account, index), None))
            account.failing.discard(index)
            self._schedule_return(account)
        elif state == SESSION_EXPIRED:
            self._cancel(self._timers.pop((account, index), None))
            self._cancel(self._returns.pop(account, None))
            self._fail(account, index, reason)
        elif state == RECONNECTING:
            self._cancel(self._returns.pop(account, None))
            if index not in account.failing and (account, index) not in self._timers:
                loop = asyncio.get_running_loop()
                self._timers[account, index] = loop.call_later(
                    self._failover_seconds, self._down_too_long, account, index, reason
                )

    def _down_too_long(self, account: Account, index: int, reason: str) -> None:
        self._timers.pop((account, index), None)
        down = f"down longer than {self._failover_seconds:g} s ({reason})"
        self._fail(account, index, down)

    def _fail(self, account: Account, index: int, reason: str) -> None:
        if index in account.failing:
            return
        account.failing.add(index)
        self._spawn(self.move_off(account, index, reason))

    def _schedule_return(self, account: Account) -> None:
        if account.failing or not self._ledger.lent_by(account):
            return
        self._cancel(self._returns.pop(account, None))
        self._returns[account] = asyncio.get_running_loop().call_later(
            self._settle_seconds, self._return_now, account
        )

    def _return_now(self, account: Account) -> None:
        self._returns.pop(account, None)
        if account.serving:
            self._spawn(self.return_home(account))

    # -- failover ----------------------------------------------------------------------------

    async def move_off(self, source: Account, index: int, reason: str) -> None:
        """Place connection ``index``'s symbols on other accounts; tell the holders of those
        that find no room."""
        keys = self._ledger.in_order(source.pool.keys_on(index))
        async for round_ in in_rounds(keys):
            claimed = self._ledger.claim(round_)
            try:
                left = [k for k in claimed if source.pool.holders_of(k)]
                for target in self._accounts:
                    if target is source or not target.serving or not left:
                        continue
                    fits = [k for k in left if target.lists(k)][: target.pool.free_room]
                    moved = await self._move(fits, source, target)
                    if moved:
                        source.failed_over += len(moved)
                        self._moved(FAILOVER, source, target, moved, reason)
                    taken = set(moved)
                    left = [k for k in left if k not in taken]
                if left:
                    self._notify(
                        f"broker connection {index} of account {source.name} is down ({reason});"
                        f" no other account has room for {counted(len(left), 'symbol')} of it,"
                        " which tick again once it is back",
                        source.pool.holders_on(index, left),
                    )
            finally:
                self._ledger.release(claimed)

    async def _move(self, keys: list[Key], source: Account, target: Account) -> list[Key]:
        """Hold ``keys`` on ``target`` for their holders on ``source``, then let ``source`` go
        of those ``target`` took; the keys moved."""
        if not keys:
            return []
        entries = [(target.pool.instrument(*k), source.pool.holders_of(k)) for k in keys]
        outcomes = await target.pool.adopt(entries)
        moved = [(o.symbol, o.exchange) for o in outcomes if o.ok]
        await source.pool.give_up(moved)
        for key in moved:
            self._ledger.moved(key, source, target)
        return self._ledger.in_order(moved)

    # -- return ------------------------------------------------------------------------------

    async def return_home(self, home: Account) -> None:
        """Move ``home``'s symbols back from the accounts carrying them, make-before-break."""
        keys = self._ledger.lent_by(home)
        async for round_ in in_rounds(keys):
            claimed = self._ledger.claim(round_)
            try:
                by_carrier: dict[Account, list[Key]] = {}
                for key in claimed:
                    if self._ledger.owner.get(key) is home:
                        by_carrier.setdefault(self._ledger.carrier[key], []).append(key)
                for carrier, carried in by_carrier.items():
                    if not home.serving:
                        return
                    back = await self._switch(carried[: home.pool.free_room], carrier, home)
                    if back:
                        home.returned += len(back)
                        self._moved(RETURN, carrier, home, back, f"account {home.name} is back")
            finally:
                self._ledger.release(claimed)

    async def _switch(self, keys: list[Key], carrier: Account, home: Account) -> list[Key]:
        """Subscribe ``keys`` on ``home``; each one's first tick there mutes ``carrier``'s copy,
        which then lets go of them. The keys moved."""
        if not keys:
            return []
        entries = [(home.pool.instrument(*k), carrier.pool.holders_of(k)) for k in keys]
        waiting: dict[bytes, Key] = {}
        all_in = asyncio.Event()

        def first_tick(topic: bytes) -> None:
            carrier.pool.mute(waiting.pop(topic))
            if not waiting:
                all_in.set()

        watch = home.pool.first_tick_watch
        for (symbol, exchange), (_, holders) in zip(keys, entries, strict=True):
            topic = tick_topic(exchange, symbol, max(holders)).encode()
            waiting[topic] = (symbol, exchange)
            watch[topic] = functools.partial(first_tick, topic)
        outcomes = await home.pool.adopt(entries)
        back = {(o.symbol, o.exchange) for o in outcomes if o.ok}
        for topic, key in list(waiting.items()):
            if key not in back:  # home could not take it: it stays where it is
                watch.pop(topic, None)
                del waiting[topic]
        if waiting:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_in.wait(), RETURN_TIMEOUT)
        for topic in list(waiting):  # no first tick in time: switch all the same
            watch.pop(topic, None)
            carrier.pool.mute(waiting.pop(topic))
        await carrier.pool.give_up(back)
        for key in back:
            self._ledger.moved(key, carrier, home)
        return self._ledger.in_order(back)

    # -- displacement ------------------------------------------------------------------------

    async def make_room(self, account: Account, wanted: int) -> None:
        """Room on ``account`` for ``wanted`` symbols of its own: borrowed symbols, the most
        recently subscribed first, go back to their own accounts to wait, their holders told."""
        short = wanted - account.pool.free_room
        borrowed = self._ledger.borrowed_by(account)
        if short <= 0 or not borrowed:
            return
        free = self._ledger.claim_free(reversed(borrowed))
        claimed = free[:short]
        self._ledger.release(free[short:])
        try:
            by_owner: dict[Account, list[Key]] = {}
            for key in claimed:
                by_owner.setdefault(self._ledger.owner[key], []).append(key)
            for owner, keys in by_owner.items():
                holders = set().union(
                    *(h for k in keys for h in account.pool.holders_of(k).values())
                )
                moved = await self._move(self._ledger.in_order(keys), account, owner)
                if not moved:
                    continue
                account.displaced += len(moved)
                reason = (
                    f"account {account.name} needs the room for its own symbols; they tick "
                    f"again once account {owner.name} is back"
                )
                self._moved(DISPLACED, account, owner, moved, reason)
                self._notify(f"{counted(len(moved), 'symbol')} stopped ticking: {reason}", holders)
        finally:
            self._ledger.release(claimed)

    # -- records -----------------------------------------------------------------------------

    def _moved(
        self, kind: str, source: Account, target: Account, keys: list[Key], why: str
    ) -> None:
        """One move batch: on the bus, in the log."""
        self._announce(
            SymbolsMoved(
                time=time.time(),
                kind=kind,
                from_account=source.name,
                to_account=target.name,
                reason=why,
                symbols=[f"{exchange}:{symbol}" for symbol, exchange in keys],
                connections=[target.pool.connection_of(key) for key in keys],
            )
        )
        what = counted(len(keys), "symbol")
        if kind == FAILOVER:
            log.warning(
                "[POOL] Moved %s from account %s to %s: %s", what, source.name, target.name, why
            )
        elif kind == RETURN:
            log.info("[POOL] Moved %s back to account %s from %s", what, target.name, source.name)
        else:
            log.warning("[POOL] %s borrowed by account %s wait again: %s", what, source.name, why)

    def _spawn(self, work) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _cancel(handle: asyncio.TimerHandle | None) -> None:
        if handle is not None:
            handle.cancel()

    async def close(self) -> None:
        for handle in [*self._timers.values(), *self._returns.values()]:
            handle.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
