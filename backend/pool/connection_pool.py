"""The connection pool: a trader's subscriptions spread over the few connections a broker allows.

Rules (``docs/pool.md`` gives them in full):

- A symbol takes one slot on one connection whatever modes it is held in; the connection holds
  it at the highest mode anyone holds, and moves it down when the highest holder lets go (see
  :mod:`backend.pool.records`).
- Placement fills first, and opens connections only up to ``MAX_WEBSOCKET_CONNECTIONS``; when the
  broker allows less than the settings do, the pool believes the broker and the symbol goes
  elsewhere if it can (see :mod:`backend.pool.placement`, and :mod:`backend.pool.relocation`
  for what a reconnected connection could not take back).
- Holds are counted per holder (a client, the desktop watchlist): the broker is told to
  unsubscribe only when the last holder lets go.
- A request that meets a symbol the broker is still being asked about takes it up again once the
  broker has answered (see :mod:`backend.pool.in_flight`).
- Nothing is dropped without an error that says why (see :mod:`backend.pool.outcomes`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Hashable, Iterable, Sequence

from backend.brokers.adapter import BrokerAdapter, Refusal
from backend.brokers.errors import BrokerError
from backend.brokers.session import BrokerSession
from backend.bus.messages import ConnectionStats, PoolStats
from backend.bus.publisher import ZmqPublisher
from backend.feed import (
    CONNECTED,
    EXCHANGES,
    INVALID_PARAMETERS,
    MAX_CAPACITY_REACHED,
    MODES,
    NOT_SUBSCRIBED,
    POOL_TOPIC,
    RECONNECTING,
    SESSION_EXPIRED,
)
from backend.instruments.master import Instrument, InstrumentMaster, UnknownSymbolError
from backend.logs.wording import counted
from backend.pool.in_flight import in_rounds
from backend.pool.outcomes import Outcome, refusal_text, refusals
from backend.pool.placement import AdapterFactory, Placement
from backend.pool.records import PooledConnection, Slot
from backend.pool.relocation import Holders, Relocation

log = logging.getLogger("feedpool.pool")


class ConnectionPool:
    """Subscriptions of one broker account, balanced over its pooled connections."""

    def __init__(
        self,
        broker: str,
        user_id: str,
        master: InstrumentMaster,
        adapter_factory: AdapterFactory,
        publisher: ZmqPublisher,
        *,
        max_symbols_per_connection: int = 1000,
        max_connections: int = 3,
        session: BrokerSession | None = None,
        account: str = "",
        first_connection: int = 1,
    ) -> None:
        self.broker = broker
        self.user_id = user_id
        self.master = master
        self.publisher = publisher
        self.session = session
        #: The broker account's name, with several accounts (:mod:`backend.pool.accounts`).
        self.account = account
        #: The number of its first connection: connections are numbered over every account.
        self.first_connection = first_connection
        #: Told ``(message, holders)`` when a connection that was up goes down (reconnecting, or
        #: refused for its session); ``holders`` hold symbols on it.
        self.notice_listeners: list[Callable[[str, set[Hashable]], None]] = []
        #: Told ``(adapter, state, reason)`` of every state a connection of the pool reports.
        self.state_listeners: list[Callable[[BrokerAdapter, str, str], None]] = []
        #: Called when the pool's figures change: publishes them, unless the pool is one of
        #: several accounts' (their sum is published).
        self.changed: Callable[[], None] = self.publish_stats
        #: ``topic -> callback``, shared by the pool's connections: each callback is called once,
        #: by the connection whose first tick on that topic it is, before it publishes it.
        self.first_tick_watch: dict[bytes, Callable[[], None]] = {}
        self.max_symbols_per_connection = max_symbols_per_connection
        self.max_connections = max_connections
        self._connections: list[PooledConnection] = []
        self._slots: dict[tuple[str, str], Slot] = {}
        self._lock = asyncio.Lock()
        self._placement = Placement(
            self._slots,
            self._connections,
            self._lock,
            self._made,
            publisher,
            max_symbols_per_connection=max_symbols_per_connection,
            max_connections=max_connections,
            first_connection=first_connection,
            on_state=self._on_state,
            on_refused=self._on_refused_after_reconnect,
        )
        self._factory = adapter_factory
        self._relocation = Relocation(
            self._slots, self._connections, self._lock, self._placement, self.subscribe_many
        )
        self._peak_symbols = 0
        self._peak_connections = 0
        self._rate_at = time.monotonic()
        log.info(
            "[POOL] Created pool for %s/%s%s: %d connections x %d symbols = %d capacity",
            broker,
            user_id,
            f" (account {account})" if account else "",
            max_connections,
            max_symbols_per_connection,
            self.capacity,
        )

    def _made(self, index: int) -> BrokerAdapter:
        """A new connection ``index``, told the account and the first-tick watch."""
        adapter = self._factory(index)
        adapter.account = self.account
        adapter.first_tick_watch = self.first_tick_watch
        return adapter

    # -- state --------------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return self.max_connections * self.max_symbols_per_connection

    @property
    def total_symbols(self) -> int:
        return len(self._slots)

    @property
    def adapters(self) -> list[BrokerAdapter]:
        return [c.adapter for c in self._connections]

    @property
    def subscription_map(self) -> dict[tuple[str, str, int], int]:
        """``(symbol, exchange, mode) -> connection index`` for every mode held."""
        return {
            (symbol, exchange, mode): slot.connection
            for (symbol, exchange), slot in self._slots.items()
            for mode in slot.holders
        }

    def holds(self, holder: Hashable) -> list[tuple[str, str, int]]:
        """Everything ``holder`` holds, as ``(symbol, exchange, mode)``."""
        return [
            (symbol, exchange, mode)
            for (symbol, exchange), slot in self._slots.items()
            for mode, holders in slot.holders.items()
            if holder in holders
        ]

    def get_stats(self) -> PoolStats:
        """Capacity, load and health of the pool and of each connection."""
        now = time.monotonic()
        elapsed = now - self._rate_at
        if elapsed >= 0.5:
            for connection in self._connections:
                received = connection.adapter.ticks_received
                connection.rate = (received - connection.ticks_seen) / elapsed
                connection.ticks_seen = received
            self._rate_at = now
        total = self.total_symbols
        return PoolStats(
            time=time.time(),
            broker=self.broker,
            user_id=self.user_id,
            max_connections=self.max_connections,
            max_symbols_per_connection=self.max_symbols_per_connection,
            capacity=self.capacity,
            total_symbols=total,
            active_connections=len(self._connections),
            peak_symbols=self._peak_symbols,
            peak_connections=self._peak_connections,
            utilisation_percent=round(100 * total / self.capacity, 2) if self.capacity else 0.0,
            session_problem=self.session.problem if self.session else "",
            connections=[
                ConnectionStats(
                    index=c.adapter.index,
                    account=self.account,
                    symbols=c.symbols,
                    capacity=c.capacity,
                    state=c.adapter.state,
                    reason=c.adapter.state_reason,
                    ticks_per_second=round(c.rate, 1),
                    ticks=c.adapter.ticks_received,
                    ticks_shed=c.adapter.ticks_shed,
                    ticks_dropped=c.adapter.ticks_dropped,
                    feeds_healed=c.adapter.feeds_healed,
                    last_tick_age_ms=(
                        round((now - c.adapter.last_tick_at) * 1000)
                        if c.adapter.last_tick_at
                        else None
                    ),
                    peak_symbols=c.peak,
                )
                for c in self._connections
            ],
        )

    def publish_stats(self) -> None:
        self.publisher.publish(POOL_TOPIC, self.get_stats())

    # -- subscribe ----------------------------------------------------------------------------

    async def subscribe(self, symbol: str, exchange: str, mode: int, holder: Hashable) -> Outcome:
        return (await self.subscribe_many([(symbol, exchange)], mode, holder))[0]

    async def subscribe_many(
        self, symbols: Sequence[tuple[str, str]], mode: int, holder: Hashable
    ) -> list[Outcome]:
        """Hold each ``(symbol, exchange)`` at ``mode`` for ``holder``; one outcome per symbol.

        The pool's lock is held only to decide and to record; the broker's answers are awaited
        outside it, so a connection whose broker is slow holds up only the requests that need
        that connection. A symbol with a request under way, or given a slot by another request
        meanwhile, is taken up again in the next round (:mod:`backend.pool.in_flight`).
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        keys = list(dict.fromkeys(symbols))
        outcomes: dict[tuple[str, str], Outcome] = {}
        async for round_ in in_rounds(keys):
            upgrades: dict[int, list[Slot]] = {}
            new: list[Instrument] = []
            async with self._lock:
                for key in round_.todo:
                    slot = self._slots.get(key)
                    if slot is None:
                        try:
                            new.append(self.instrument(*key))
                        except (UnknownSymbolError, ValueError) as exc:
                            outcomes[key] = Outcome(*key, mode, False, INVALID_PARAMETERS, str(exc))
                    elif slot.busy is not None:
                        round_.put_off(key, slot.busy)
                    elif mode > slot.mode:
                        slot.start_work()
                        upgrades.setdefault(slot.connection, []).append(slot)
                    else:
                        slot.holders.setdefault(mode, set()).add(holder)
                        outcomes[key] = slot.outcome(mode)
            outcomes.update(await self._upgrade(upgrades, mode, holder))
            placed, raced = await self._placement.place(new, mode, lambda _: {mode: {holder}})
            for outcome in placed:
                outcomes[outcome.symbol, outcome.exchange] = outcome
            for instrument in raced:
                round_.put_off((instrument.symbol, instrument.exchange))
        self._note_peaks()
        refused_for_capacity = sum(o.code == MAX_CAPACITY_REACHED for o in outcomes.values())
        if refused_for_capacity and not self.account:
            log.warning(
                "[POOL] Capacity exhausted: %d/%d symbols on %s; %d refused",
                self.total_symbols,
                self._placement.room(),
                counted(len(self._connections), "connection"),
                refused_for_capacity,
            )
        self.changed()
        return [outcomes[key] for key in keys]

    async def _upgrade(
        self, upgrades: dict[int, list[Slot]], mode: int, holder: Hashable
    ) -> dict[tuple[str, str], Outcome]:
        """Move held symbols up to ``mode`` on their connections, all at once."""
        if not upgrades:
            return {}
        requests = [
            self._adapter(index).hold([s.instrument for s in slots], mode)
            for index, slots in upgrades.items()
        ]
        results = await asyncio.gather(*requests, return_exceptions=True)
        outcomes = {}
        async with self._lock:
            for slots, result in zip(upgrades.values(), results, strict=True):
                refused = refusals(result, [s.instrument for s in slots])
                outcomes.update(self._apply_upgrade(slots, refused, mode, holder))
                for slot in slots:
                    slot.end_work()
        return outcomes

    def instrument(self, symbol: str, exchange: str) -> Instrument:
        """The instrument the account's master lists; :class:`UnknownSymbolError` or
        :class:`ValueError` (an exchange FeedPool does not know) naming what is wrong."""
        if exchange not in EXCHANGES:
            raise ValueError(
                f"unknown exchange {exchange!r} for {symbol!r}; "
                f"expected one of {', '.join(EXCHANGES)}"
            )
        return self.master.get(symbol, exchange)

    @staticmethod
    def _apply_upgrade(
        slots: list[Slot], refused: list[Refusal], mode: int, holder: Hashable
    ) -> dict[tuple[str, str], Outcome]:
        reasons = {(r.instrument.symbol, r.instrument.exchange): r for r in refused}
        outcomes = {}
        for slot in slots:
            key = (slot.instrument.symbol, slot.instrument.exchange)
            refusal = reasons.get(key)
            if refusal is None:
                slot.holders.setdefault(mode, set()).add(holder)
                outcomes[key] = slot.outcome(mode)
            else:
                outcomes[key] = Outcome(*key, mode, False, BrokerError.code, refusal_text(refusal))
        return outcomes

    def _note_peaks(self) -> None:
        self._peak_symbols = max(self._peak_symbols, self.total_symbols)
        self._peak_connections = max(self._peak_connections, len(self._connections))

    def _adapter(self, index: int) -> BrokerAdapter:
        return self._connection(index).adapter

    def _connection(self, index: int) -> PooledConnection:
        return self._placement.connection(index)

    # -- unsubscribe ---------------------------------------------------------------------------

    async def unsubscribe(self, symbol: str, exchange: str, mode: int, holder: Hashable) -> Outcome:
        return (await self.unsubscribe_many([(symbol, exchange, mode)], holder))[0]

    async def unsubscribe_many(
        self, subscriptions: Iterable[tuple[str, str, int]], holder: Hashable
    ) -> list[Outcome]:
        """Let go of each ``(symbol, exchange, mode)`` ``holder`` holds; one outcome each.

        As with :meth:`subscribe_many`, the broker is told outside the pool's lock, and a symbol
        with a request under way is taken up again in the next round.
        """
        outcomes: dict[tuple[str, str, int], Outcome] = {}
        keys = list(dict.fromkeys(subscriptions))
        async for round_ in in_rounds(keys):
            released: dict[int, list[Slot]] = {}
            moved: dict[tuple[int, int], list[Slot]] = {}  # (connection, mode) -> moved down
            async with self._lock:
                for symbol, exchange, mode in round_.todo:
                    slot = self._slots.get((symbol, exchange))
                    holders = slot.holders.get(mode) if slot else None
                    if slot is None or holders is None or holder not in holders:
                        outcomes[symbol, exchange, mode] = Outcome(
                            symbol,
                            exchange,
                            mode,
                            False,
                            NOT_SUBSCRIBED,
                            f"{symbol} on {exchange} is not subscribed in mode {mode}",
                        )
                        continue
                    if slot.busy is not None:
                        round_.put_off((symbol, exchange, mode), slot.busy)
                        continue
                    outcomes[symbol, exchange, mode] = slot.outcome(mode)
                    before = slot.mode
                    holders.discard(holder)
                    if not holders:
                        del slot.holders[mode]
                    if not slot.holders:
                        slot.start_work()
                        released.setdefault(slot.connection, []).append(slot)
                    elif slot.mode < before:
                        slot.start_work()
                        moved.setdefault((slot.connection, slot.mode), []).append(slot)
            await self._let_go(released, moved)
        self.changed()
        return [outcomes[key] for key in keys]

    async def release(self, holder: Hashable) -> int:
        """Let go of everything ``holder`` holds (a client went away); returns how many."""
        held = self.holds(holder)
        await self.unsubscribe_many(held, holder)
        return len(held)

    async def _let_go(
        self, released: dict[int, list[Slot]], moved: dict[tuple[int, int], list[Slot]]
    ) -> None:
        """Tell each connection what it no longer holds, and what it holds lower.

        A released symbol keeps its slot, busy, until its connection has let go of it: a request
        for it meanwhile waits, so the broker never hears a subscribe overtaken by the
        unsubscribe before it. Its room is free from then on.
        """
        requests = [
            self._adapter(index).release([s.instrument for s in slots])
            for index, slots in released.items()
        ]
        requests += [
            self._adapter(index).hold([s.instrument for s in slots], mode)
            for (index, mode), slots in moved.items()
        ]
        await asyncio.gather(*requests, return_exceptions=True)
        async with self._lock:
            for index, slots in released.items():
                self._connection(index).symbols -= len(slots)
                for slot in slots:
                    del self._slots[slot.instrument.symbol, slot.instrument.exchange]
            for slot in itertools.chain(*released.values(), *moved.values()):
                slot.end_work()

    # -- connection events -----------------------------------------------------------------------

    def _on_state(self, adapter: BrokerAdapter, state: str, reason: str) -> None:
        connection = self._connection(adapter.index)
        if state == CONNECTED:
            connection.up = True
        elif state in (RECONNECTING, SESSION_EXPIRED) and connection.up:
            connection.up = False
            message = (
                f"broker connection {adapter.index} is down ({reason}); "
                "its symbols tick again once it is back"
            )
            for listener in self.notice_listeners:
                listener(message, self.holders_on(adapter.index))
        for listener in self.state_listeners:
            listener(adapter, state, reason)
        if state == CONNECTED or reason:
            self.changed()

    def holders_on(
        self, index: int, keys: Iterable[tuple[str, str]] | None = None
    ) -> set[Hashable]:
        """Who holds symbols on connection ``index`` (of ``keys`` only, if given)."""
        slots = self._slots.values() if keys is None else filter(None, map(self._slots.get, keys))
        return {
            holder
            for slot in slots
            if slot.connection == index
            for mode_holders in slot.holders.values()
            for holder in mode_holders
        }

    def _on_refused_after_reconnect(self, adapter: BrokerAdapter, refused: list[Refusal]) -> None:
        """A reconnected connection could not take back everything: place those elsewhere."""
        asyncio.get_running_loop().create_task(self._replace(adapter.index, refused))

    async def _replace(self, index: int, refused: list[Refusal]) -> None:
        """Move what connection ``index`` refused elsewhere, then publish the new load."""
        await self._relocation.move_refused(index, refused)
        self.changed()

    # -- symbols moved between accounts (backend.pool.accounts) ----------------------------------

    @property
    def free_room(self) -> int:
        """Symbols the pool can take now, given what the broker has refused."""
        return max(self._placement.room() - len(self._slots), 0)

    def holders_of(self, key: tuple[str, str]) -> Holders:
        """Who holds ``key`` (``(symbol, exchange)``), by mode: a copy; empty if not held."""
        slot = self._slots.get(key)
        return {mode: set(holders) for mode, holders in slot.holders.items()} if slot else {}

    def connection_of(self, key: tuple[str, str]) -> int:
        """The connection holding ``key``; 0 if none does."""
        slot = self._slots.get(key)
        return slot.connection if slot else 0

    def keys_on(self, index: int) -> list[tuple[str, str]]:
        """The symbols connection ``index`` holds, as ``(symbol, exchange)``."""
        return [key for key, slot in self._slots.items() if slot.connection == index]

    async def adopt(self, entries: list[tuple[Instrument, Holders]]) -> list[Outcome]:
        """Hold symbols the pool does not hold, each for all its holders (``{mode: holders}``):
        placed like new ones, at the highest mode held; one outcome each."""
        outcomes = await self._relocation.place_again(entries)
        self._note_peaks()
        self.changed()
        return outcomes

    def mute(self, key: tuple[str, str]) -> None:
        """Publish no more ticks of ``key`` from now on (it is let go of next, see
        :meth:`give_up`), so that another account's first tick of it is the next one out."""
        slot = self._slots.get(key)
        if slot is not None:
            self._adapter(slot.connection).mute(slot.instrument)

    async def give_up(self, keys: Iterable[tuple[str, str]]) -> None:
        """Let go of ``keys`` for all their holders (another account holds them now)."""
        async for round_ in in_rounds(list(keys)):
            released: dict[int, list[Slot]] = {}
            async with self._lock:
                for key in round_.todo:
                    slot = self._slots.get(key)
                    if slot is None:
                        continue
                    if slot.busy is not None:
                        round_.put_off(key, slot.busy)
                        continue
                    slot.start_work()
                    released.setdefault(slot.connection, []).append(slot)
            await self._let_go(released, {})
        self.changed()

    # -- shutdown ------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close every connection and log the peak usage."""
        async with self._lock:
            for connection in self._connections:
                await connection.adapter.close()
            log.info(
                "[POOL] Closed pool for %s/%s: peak %d symbols on %s",
                self.broker,
                self.user_id,
                self._peak_symbols,
                counted(self._peak_connections, "connection"),
            )
            self._connections.clear()
            self._slots.clear()
