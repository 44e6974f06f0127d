"""Several broker accounts as one pool: what the client API, the bus and the desktop see.

:class:`PooledAccounts` holds one :class:`~backend.pool.connection_pool.ConnectionPool` per
account, in the trader's order, and answers as one pool (``docs/pool.md``, "Several accounts"):

- A new symbol goes to the first account, in the trader's order, that is serving, whose master
  lists it and which has room (borrowed symbols give theirs up, see
  :mod:`backend.pool.failover`); an account that is not serving takes it only when no serving
  account can. A symbol no account lists gets the unknown-symbol error; one that finds no room
  gets ``MAX_CAPACITY_REACHED`` naming each account's load and state.
- A symbol held already goes to the account carrying it, whose pool counts its holders as one
  pool does. The capacity is the sum of the accounts'.
- Each account's connections are numbered on from the previous account's, as many numbers as it
  may open, so a connection's number is unique over the accounts.

With one account it is that account's pool, unchanged: no ledger, no failover.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

from backend.brokers import BROKERS
from backend.brokers.adapter import BrokerAdapter
from backend.brokers.session import BrokerSession
from backend.bus.messages import AccountStats, PoolStats, SymbolsMoved
from backend.bus.publisher import ZmqPublisher
from backend.feed import (
    BROKER_CONNECTION_ERROR,
    INVALID_PARAMETERS,
    MAX_CAPACITY_REACHED,
    MODES,
    MOVES_TOPIC,
    POOL_TOPIC,
)
from backend.instruments.master import UnknownSymbolError
from backend.pool.connection_pool import ConnectionPool
from backend.pool.failover import Failover, Notify
from backend.pool.in_flight import in_rounds
from backend.pool.ledger import Account, Key, Ledger
from backend.pool.outcomes import Outcome
from backend.security.secret import Secret

log = logging.getLogger("feedpool.pool")

#: What a refusal on one account leaves to the next.
TRY_NEXT = frozenset({MAX_CAPACITY_REACHED, BROKER_CONNECTION_ERROR})


class PooledAccounts:
    """The accounts' pools, answering as one. ``accounts`` in the trader's order."""

    def __init__(
        self,
        accounts: list[Account],
        publisher: ZmqPublisher,
        *,
        failover_seconds: float = 5.0,
        **failover_options: float,
    ) -> None:
        self.accounts = accounts
        self.publisher = publisher
        #: Told ``(message, holders)`` when symbols those hold stop ticking.
        self.notice_listeners: list[Notify] = []
        self._ledger = Ledger()
        self._failover: Failover | None = None
        if len(accounts) == 1:
            accounts[0].pool.notice_listeners.append(self._notify)
            return
        for account in accounts:
            account.pool.changed = self.publish_stats
        self._failover = Failover(
            accounts,
            self._ledger,
            self._notify,
            self._announce,
            failover_seconds=failover_seconds,
            **failover_options,
        )

    @classmethod
    def of(cls, pool: ConnectionPool) -> PooledAccounts:
        """One account: ``pool``."""
        return cls([Account(pool.account or pool.broker, pool.broker, pool)], pool.publisher)

    # -- what clients are told of the pool ----------------------------------------------------

    @property
    def broker(self) -> str:
        return self.accounts[0].pool.broker

    @property
    def user_id(self) -> str:
        return self.accounts[0].pool.user_id

    @property
    def total_symbols(self) -> int:
        return sum(a.pool.total_symbols for a in self.accounts)

    @property
    def capacity(self) -> int:
        return sum(a.pool.capacity for a in self.accounts)

    @property
    def sessions(self) -> list[BrokerSession]:
        return [a.pool.session for a in self.accounts if a.pool.session is not None]

    @property
    def adapters(self) -> list[BrokerAdapter]:
        return [adapter for account in self.accounts for adapter in account.pool.adapters]

    def account_states(self) -> list[dict[str, Any]]:
        """Each account's name, broker and state, for ``get_broker_info``."""
        return [
            {
                "name": a.name,
                "broker": a.broker,
                "user_id": a.pool.user_id,
                "serving": a.serving,
                "problem": a.problem,
                "symbols": a.pool.total_symbols,
                "capacity": a.pool.capacity,
            }
            for a in self.accounts
        ]

    async def set_session(self, name: str, given: Mapping[str, object]) -> Account:
        """The trader logged in to account ``name`` again: its session takes the day's new
        settings ``given`` (those its broker's login saves, such as ``KITE_ACCESS_TOKEN``), and
        its connections refused for the old session open again, and take back their symbols.
        :class:`ValueError` naming what is wrong; :class:`LoginError` if the broker refuses."""
        account = next((a for a in self.accounts if a.name == name), None)
        if account is None:
            names = ", ".join(repr(a.name) for a in self.accounts)
            raise ValueError(f"no account named {name!r}; the accounts are {names}")
        broker = BROKERS.get(account.broker)
        session = account.pool.session
        if broker is None or session is None or not account.values:
            raise ValueError(f"account {name!r} takes no session from a login")
        kinds = {s.name: s.kind for s in broker.settings if s.from_login}
        unknown = sorted(set(given) - set(kinds))
        if unknown or not given:
            expected = ", ".join(sorted(kinds)) or "none: it logs in by itself"
            raise ValueError(
                f"account {name!r} ({broker.label}) takes these settings from a login: {expected}"
            )
        values = {**account.values}
        for setting, value in given.items():
            text = str(value).strip()
            values[setting] = Secret(text) if kinds[setting] == "secret" else text
        fresh = broker.session(values)
        await fresh.begin()
        session.provide(fresh.credentials)
        account.values = values
        return account

    def holds(self, holder: Hashable) -> list[tuple[str, str, int]]:
        return [held for account in self.accounts for held in account.pool.holds(holder)]

    # -- subscribe ----------------------------------------------------------------------------

    async def subscribe_many(
        self, symbols: Sequence[tuple[str, str]], mode: int, holder: Hashable
    ) -> list[Outcome]:
        """Hold each ``(symbol, exchange)`` at ``mode`` for ``holder``; one outcome per symbol."""
        if self._failover is None:
            return await self.accounts[0].pool.subscribe_many(symbols, mode, holder)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        keys = list(dict.fromkeys(symbols))
        outcomes: dict[Key, Outcome] = {}
        async for round_ in in_rounds(keys):
            claimed = self._ledger.claim(round_)
            try:
                held: dict[Account, list[Key]] = {}
                new = []
                for key in claimed:
                    carrier = self._ledger.carrier.get(key)
                    if carrier is None:
                        new.append(key)
                    else:
                        held.setdefault(carrier, []).append(key)
                results = await asyncio.gather(
                    *(a.pool.subscribe_many(ks, mode, holder) for a, ks in held.items())
                )
                for account, answered in zip(held, results, strict=True):
                    outcomes.update(self._record(account, answered))
                outcomes.update(await self._place(new, mode, holder))
            finally:
                self._ledger.release(claimed)
        self.publish_stats()
        return [outcomes[key] for key in keys]

    async def _place(self, keys: list[Key], mode: int, holder: Hashable) -> dict[Key, Outcome]:
        """New symbols on the first account that can take them (the module's rules)."""
        outcomes: dict[Key, Outcome] = {}
        tried: set[Key] = set()
        left = keys
        serving = [a for a in self.accounts if a.serving]
        for account in serving + [a for a in self.accounts if not a.serving]:
            listed = [k for k in left if account.lists(k)]
            if not listed:
                continue
            if account.serving:
                await self._failover.make_room(account, len(listed))
            answered = await account.pool.subscribe_many(listed, mode, holder)
            for key, outcome in self._record(account, answered).items():
                if outcome.ok or outcome.code not in TRY_NEXT:
                    outcomes[key] = outcome
                else:
                    tried.add(key)
            left = [k for k in left if k not in outcomes]
            if not left:
                return outcomes
        full = [k for k in left if k in tried]
        if full:
            states = "; ".join(a.describe() for a in self.accounts)
            message = f"no account can take it: {states}"
            log.warning(
                "[POOL] Capacity exhausted on every account: %d refused (%s)", len(full), states
            )
            for symbol, exchange in full:
                outcomes[symbol, exchange] = Outcome(
                    symbol, exchange, mode, False, MAX_CAPACITY_REACHED, message
                )
        for symbol, exchange in left:
            if (symbol, exchange) not in tried:
                outcomes[symbol, exchange] = self._unknown(symbol, exchange, mode)
        return outcomes

    def _unknown(self, symbol: str, exchange: str, mode: int) -> Outcome:
        """The outcome of a symbol no account's master lists: the first account's error."""
        try:
            self.accounts[0].pool.instrument(symbol, exchange)
            message = f"no account lists {symbol} on {exchange}"
        except (UnknownSymbolError, ValueError) as exc:
            message = str(exc)
        return Outcome(symbol, exchange, mode, False, INVALID_PARAMETERS, message)

    def _record(self, account: Account, outcomes: Iterable[Outcome]) -> dict[Key, Outcome]:
        """``account``'s outcomes, named after it; the symbols it holds now noted as carried."""
        recorded = {}
        for outcome in outcomes:
            key = (outcome.symbol, outcome.exchange)
            outcome.account = account.name
            if outcome.ok:
                self._ledger.carried(key, account)
            recorded[key] = outcome
        return recorded

    # -- unsubscribe ---------------------------------------------------------------------------

    async def unsubscribe_many(
        self, subscriptions: Iterable[tuple[str, str, int]], holder: Hashable
    ) -> list[Outcome]:
        """Let go of each ``(symbol, exchange, mode)`` ``holder`` holds; one outcome each."""
        if self._failover is None:
            return await self.accounts[0].pool.unsubscribe_many(subscriptions, holder)
        keys = list(dict.fromkeys(subscriptions))
        outcomes: dict[tuple[str, str, int], Outcome] = {}
        async for round_ in in_rounds(list(dict.fromkeys(k[:2] for k in keys))):
            claimed = set(self._ledger.claim(round_))
            try:
                by_account: dict[Account, list[tuple[str, str, int]]] = {}
                for key in keys:
                    if key[:2] in claimed:
                        carrier = self._ledger.carrier.get(key[:2], self.accounts[0])
                        by_account.setdefault(carrier, []).append(key)
                results = await asyncio.gather(
                    *(a.pool.unsubscribe_many(ks, holder) for a, ks in by_account.items())
                )
                for (account, asked), answered in zip(by_account.items(), results, strict=True):
                    for key, outcome in zip(asked, answered, strict=True):
                        outcome.account = account.name
                        outcomes[key] = outcome
                        if not account.pool.holders_of(key[:2]):
                            self._ledger.forget(key[:2])
            finally:
                self._ledger.release(claimed)
        self.publish_stats()
        return [outcomes[key] for key in keys]

    async def release(self, holder: Hashable) -> int:
        """Let go of everything ``holder`` holds (a client went away); returns how many."""
        held = self.holds(holder)
        await self.unsubscribe_many(held, holder)
        return len(held)

    # -- statistics and notices ----------------------------------------------------------------

    def get_stats(self) -> PoolStats:
        """The accounts' statistics summed, with each account's own."""
        if self._failover is None:
            return self.accounts[0].pool.get_stats()
        each = [(a, a.pool.get_stats()) for a in self.accounts]
        first = each[0][1]
        capacity = sum(s.capacity for _, s in each)
        total = sum(s.total_symbols for _, s in each)
        return PoolStats(
            time=time.time(),
            broker=first.broker,
            user_id=first.user_id,
            max_connections=sum(s.max_connections for _, s in each),
            max_symbols_per_connection=first.max_symbols_per_connection,
            capacity=capacity,
            total_symbols=total,
            active_connections=sum(s.active_connections for _, s in each),
            peak_symbols=sum(s.peak_symbols for _, s in each),
            peak_connections=sum(s.peak_connections for _, s in each),
            utilisation_percent=round(100 * total / capacity, 2) if capacity else 0.0,
            session_problem="; ".join(
                f"{a.name}: {s.session_problem}" for a, s in each if s.session_problem
            ),
            connections=[c for _, s in each for c in s.connections],
            accounts=[
                AccountStats(
                    name=a.name,
                    broker=a.broker,
                    user_id=s.user_id,
                    serving=a.serving,
                    session_problem=s.session_problem,
                    capacity=s.capacity,
                    symbols=s.total_symbols,
                    borrowed=len(self._ledger.borrowed_by(a)),
                    lent=len(self._ledger.lent_by(a)),
                    failed_over=a.failed_over,
                    returned=a.returned,
                    displaced=a.displaced,
                )
                for a, s in each
            ],
        )

    def publish_stats(self) -> None:
        self.publisher.publish(POOL_TOPIC, self.get_stats())

    def _announce(self, moved: SymbolsMoved) -> None:
        self.publisher.publish(MOVES_TOPIC, moved)
        self.publish_stats()

    def _notify(self, message: str, holders: set[Hashable]) -> None:
        for listener in self.notice_listeners:
            listener(message, holders)

    # -- shutdown ------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop moving symbols, then close every account's pool and session."""
        if self._failover is not None:
            await self._failover.close()
        for account in self.accounts:
            await account.pool.close()
        for session in self.sessions:
            await session.close()
