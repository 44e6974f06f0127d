"""Where each symbol is, with several broker accounts: the accounts, and the ledger of symbols.

Each :class:`Account` is one broker account's :class:`~backend.pool.connection_pool.ConnectionPool`.
The :class:`Ledger` says which account carries each symbol, whose own a borrowed symbol is (the
account it was moved off, which takes it back once it can), and the order symbols were first
subscribed in, which is the order they move in. A request or a move claims its symbols for as
long as it works on them; another that meets a claimed symbol takes it up once the claim ends
(:mod:`backend.pool.in_flight`'s rounds).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from backend.instruments.master import UnknownSymbolError
from backend.pool.connection_pool import ConnectionPool
from backend.pool.in_flight import Round

Key = tuple[str, str]  # (symbol, exchange)


@dataclass(eq=False)
class Account:
    """One broker account: its name, its broker and its pool, and what it has moved."""

    name: str
    broker: str
    pool: ConnectionPool
    #: The broker's settings its session was made from, by name (see :meth:`PooledAccounts.
    #: set_session`); empty where the pool was given fixed credentials.
    values: Mapping[str, Any] = field(default_factory=dict, repr=False)
    #: Its connections whose symbols fail over: their session ended, or they have been down
    #: longer than ``FAILOVER_SECONDS``.
    failing: set[int] = field(default_factory=set)
    failed_over: int = 0
    returned: int = 0
    displaced: int = 0

    @property
    def serving(self) -> bool:
        """Whether it can take symbols: a live session and no failing connection."""
        session = self.pool.session
        return not self.failing and not (session is not None and session.problem)

    @property
    def problem(self) -> str:
        """Why it is not serving, for people; empty while it is."""
        session = self.pool.session
        if session is not None and session.problem:
            return session.problem
        if self.failing:
            down = ", ".join(map(str, sorted(self.failing)))
            return f"connection {down} down"
        return ""

    def lists(self, key: Key) -> bool:
        """Whether its instrument master lists ``key``."""
        try:
            self.pool.instrument(*key)
        except (UnknownSymbolError, ValueError):
            return False
        return True

    def describe(self) -> str:
        """Its name, broker, load and state, as a capacity error names it."""
        pool = self.pool
        state = "serving" if self.serving else f"not serving: {self.problem}"
        load = f"{pool.total_symbols:,}/{pool.capacity:,} symbols"
        return f"{self.name} ({self.broker}) {load}, {state}"


class Ledger:
    """Which account carries each symbol, whose own the borrowed ones are, and the claims."""

    def __init__(self) -> None:
        self.carrier: dict[Key, Account] = {}
        #: The account a borrowed symbol belongs to (it was moved off it); absent for the rest.
        self.owner: dict[Key, Account] = {}
        self.order: dict[Key, int] = {}
        self._sequence = itertools.count()
        self._claims: dict[Key, asyncio.Future[None]] = {}

    def claim(self, round_: Round[Key]) -> list[Key]:
        """Claim the keys of ``round_`` no one else has; put off the others until theirs end."""
        claimed = []
        for key in round_.todo:
            busy = self._claims.get(key)
            if busy is not None:
                round_.put_off(key, busy)
            else:
                self._claims[key] = asyncio.get_running_loop().create_future()
                claimed.append(key)
        return claimed

    def claim_free(self, keys: Iterable[Key]) -> list[Key]:
        """Claim those of ``keys`` no one else has; the others are left alone."""
        claimed = [key for key in keys if key not in self._claims]
        for key in claimed:
            self._claims[key] = asyncio.get_running_loop().create_future()
        return claimed

    def release(self, keys: Iterable[Key]) -> None:
        for key in keys:
            done = self._claims.pop(key, None)
            if done is not None:
                done.set_result(None)

    def carried(self, key: Key, account: Account) -> None:
        """``account`` carries ``key`` now (its own, unless borrowed: see :meth:`moved`)."""
        self.carrier[key] = account
        self.order.setdefault(key, next(self._sequence))

    def moved(self, key: Key, source: Account, target: Account) -> None:
        """``key`` went from ``source`` to ``target``: borrowed, unless it went home."""
        owner = self.owner.get(key, source)
        self.carrier[key] = target
        if owner is target:
            self.owner.pop(key, None)
        else:
            self.owner[key] = owner

    def forget(self, key: Key) -> None:
        self.carrier.pop(key, None)
        self.owner.pop(key, None)
        self.order.pop(key, None)

    def in_order(self, keys: Iterable[Key]) -> list[Key]:
        """``keys`` in the order they were first subscribed."""
        return sorted(keys, key=lambda k: self.order.get(k, -1))

    def borrowed_by(self, account: Account) -> list[Key]:
        """Symbols ``account`` carries for others, in order."""
        return self.in_order(k for k, owner in self.owner.items() if self.carrier[k] is account)

    def lent_by(self, account: Account) -> list[Key]:
        """Symbols of ``account``'s that others carry, in order."""
        return self.in_order(k for k, owner in self.owner.items() if owner is account)
