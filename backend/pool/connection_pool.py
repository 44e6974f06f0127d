"""The connection pool: a trader's subscriptions spread over the few connections a broker allows.

Rules (README, "What the backend does"):

- A symbol takes one slot on one connection whatever modes it is held in; the connection holds
  it at the highest mode anyone holds, and moves it down when the highest holder lets go.
- Placement fills first: a symbol already held stays where it is; a new one goes to the first
  connection with room; a new connection opens only when every open one is full; past
  ``MAX_WEBSOCKET_CONNECTIONS`` the answer is ``MAX_CAPACITY_REACHED``.
- Holds are counted per holder (a client, the desktop watchlist): the broker is told to
  unsubscribe only when the last holder lets go.
- When the broker allows less than the settings do (a connection refused with HTTP 429, a
  subscription refused with E1002), the pool believes the broker: that connection is full, or
  the connection cap is what is open, and the symbol goes elsewhere if it can. Nothing is dropped
  without an error that says why.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from backend.brokers.adapter import (
    BrokerAdapter,
    BrokerConnectionError,
    BrokerError,
    ConnectionLimitError,
    Refusal,
    pooled_creation,
)
from backend.brokers.session import BrokerSession
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

log = logging.getLogger("feedpool.pool")

MILESTONE = 100  # a [POOL] line each time a connection's load crosses a multiple of this

AdapterFactory = Callable[[int], BrokerAdapter]


@dataclass(slots=True)
class Outcome:
    """What became of one symbol in a subscribe or unsubscribe request."""

    symbol: str
    exchange: str
    mode: int
    ok: bool
    code: str = ""
    message: str = ""
    connection: int | None = None  # the pooled connection holding the symbol


@dataclass(slots=True)
class _Slot:
    """One symbol on one connection, and who holds it in which modes."""

    instrument: Instrument
    connection: int
    holders: dict[int, set[Hashable]] = field(default_factory=dict)  # mode -> holders
    #: Set while a request to the broker about this symbol is under way; done when it ends.
    busy: asyncio.Future[None] | None = None

    def start_work(self) -> None:
        self.busy = asyncio.get_running_loop().create_future()

    def end_work(self) -> None:
        if self.busy is not None and not self.busy.done():
            self.busy.set_result(None)
        self.busy = None

    @property
    def mode(self) -> int:
        return max(self.holders)


@dataclass(slots=True)
class _Connection:
    adapter: BrokerAdapter
    capacity: int
    symbols: int = 0
    #: Room taken by symbols whose subscription the broker has not answered yet.
    reserved: int = 0
    peak: int = 0
    ticks_seen: int = 0
    rate: float = 0.0
    #: Connected, as the broker last said; a connection that was up and goes down is news.
    up: bool = True


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
    ) -> None:
        self.broker = broker
        self.user_id = user_id
        self.master = master
        self.publisher = publisher
        self.session = session
        #: Told ``(connection index, reason, holders)`` when a connection that was up goes down
        #: (reconnecting, or refused for its session); ``holders`` hold symbols on it.
        self.feed_down_listeners: list[Callable[[int, str, set[Hashable]], None]] = []
        self.max_symbols_per_connection = max_symbols_per_connection
        self.max_connections = max_connections
        self._connection_cap = max_connections  # lowered when the broker refuses a connection
        self._cap_reason = ""
        self._factory = adapter_factory
        self._connections: list[_Connection] = []
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._lock = asyncio.Lock()
        self._peak_symbols = 0
        self._peak_connections = 0
        self._rate_at = time.monotonic()
        log.info(
            "[POOL] Created pool for %s/%s: %d connections x %d symbols = %d capacity",
            broker,
            user_id,
            max_connections,
            max_symbols_per_connection,
            self.capacity,
        )

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

    def get_stats(self) -> dict[str, Any]:
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
        return {
            "time": time.time(),
            "broker": self.broker,
            "user_id": self.user_id,
            "max_connections": self.max_connections,
            "max_symbols_per_connection": self.max_symbols_per_connection,
            "capacity": self.capacity,
            "total_symbols": total,
            "active_connections": len(self._connections),
            "peak_symbols": self._peak_symbols,
            "peak_connections": self._peak_connections,
            "utilisation_percent": round(100 * total / self.capacity, 2) if self.capacity else 0.0,
            "session_problem": self.session.problem if self.session else "",
            "connections": [
                {
                    "index": c.adapter.index,
                    "symbols": c.symbols,
                    "capacity": c.capacity,
                    "state": c.adapter.state,
                    "reason": c.adapter.state_reason,
                    "ticks_per_second": round(c.rate, 1),
                    "ticks": c.adapter.ticks_received,
                    "ticks_shed": c.adapter.ticks_shed,
                    "ticks_dropped": c.adapter.ticks_dropped,
                    "feeds_healed": c.adapter.feeds_healed,
                    "last_tick_age_ms": (
                        round((now - c.adapter.last_tick_at) * 1000)
                        if c.adapter.last_tick_at
                        else None
                    ),
                    "peak_symbols": c.peak,
                }
                for c in self._connections
            ],
        }

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
        that connection. A symbol with a request under way is taken up again once that is done.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        keys = list(dict.fromkeys(symbols))
        outcomes: dict[tuple[str, str], Outcome] = {}
        todo = keys
        while todo:
            waiting: list[tuple[str, str]] = []
            busy: list[asyncio.Future[None]] = []
            upgrades: dict[int, list[_Slot]] = {}
            new: list[Instrument] = []
            async with self._lock:
                for symbol, exchange in todo:
                    slot = self._slots.get((symbol, exchange))
                    if slot is None:
                        try:
                            new.append(self._instrument(symbol, exchange))
                        except (UnknownSymbolError, ValueError) as exc:
                            outcomes[symbol, exchange] = Outcome(
                                symbol, exchange, mode, False, INVALID_PARAMETERS, str(exc)
                            )
                    elif slot.busy is not None:
                        waiting.append((symbol, exchange))
                        busy.append(slot.busy)
                    elif mode > slot.mode:
                        slot.start_work()
                        upgrades.setdefault(slot.connection, []).append(slot)
                    else:
                        slot.holders.setdefault(mode, set()).add(holder)
                        outcomes[symbol, exchange] = self._held_outcome(slot, mode)
            outcomes.update(await self._upgrade(upgrades, mode, holder))
            placed, raced = await self._place(new, mode, lambda _: {mode: {holder}})
            for outcome in placed:
                outcomes[outcome.symbol, outcome.exchange] = outcome
            waiting += [(i.symbol, i.exchange) for i in raced]
            if busy:
                await asyncio.wait(busy)
            todo = waiting
        self._note_peaks()
        refused_for_capacity = sum(o.code == MAX_CAPACITY_REACHED for o in outcomes.values())
        if refused_for_capacity:
            log.warning(
                "[POOL] Capacity exhausted: %d/%d symbols on %d connections; %d refused",
                self.total_symbols,
                self._room(),
                len(self._connections),
                refused_for_capacity,
            )
        self.publish_stats()
        return [outcomes[key] for key in keys]

    async def _upgrade(
        self, upgrades: dict[int, list[_Slot]], mode: int, holder: Hashable
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
                refused = _refusals(result, [s.instrument for s in slots])
                outcomes.update(self._apply_upgrade(slots, refused, mode, holder))
                for slot in slots:
                    slot.end_work()
        return outcomes

    def _instrument(self, symbol: str, exchange: str) -> Instrument:
        if exchange not in EXCHANGES:
            raise ValueError(
                f"unknown exchange {exchange!r} for {symbol!r}; "
                f"expected one of {', '.join(EXCHANGES)}"
            )
        return self.master.get(symbol, exchange)

    @staticmethod
    def _held_outcome(slot: _Slot, mode: int) -> Outcome:
        instrument = slot.instrument
        return Outcome(
            instrument.symbol, instrument.exchange, mode, True, connection=slot.connection
        )

    def _apply_upgrade(
        self, slots: list[_Slot], refused: list[Refusal], mode: int, holder: Hashable
    ) -> dict[tuple[str, str], Outcome]:
        reasons = {(r.instrument.symbol, r.instrument.exchange): r for r in refused}
        outcomes = {}
        for slot in slots:
            key = (slot.instrument.symbol, slot.instrument.exchange)
            refusal = reasons.get(key)
            if refusal is None:
                slot.holders.setdefault(mode, set()).add(holder)
                outcomes[key] = self._held_outcome(slot, mode)
            else:
                outcomes[key] = Outcome(*key, mode, False, BrokerError.code, _refusal_text(refusal))
        return outcomes

    async def _place(
        self,
        instruments: list[Instrument],
        mode: int,
        holders: Callable[[Instrument], dict[int, set[Hashable]]],
    ) -> tuple[list[Outcome], list[Instrument]]:
        """Put new symbols on connections, filling first and opening connections as needed.

        Room is reserved under the lock, the broker is asked outside it (every connection at
        once), and what it took is recorded under the lock again, held by ``holders(symbol)``.
        What a connection refused for being full goes round again to the next with room.

        Returns the outcomes, and the symbols another request gave a slot meanwhile: those are
        not placed a second time, and the caller joins their slot instead.
        """
        outcomes: list[Outcome] = []
        raced: list[Instrument] = []
        queue = list(instruments)
        while queue:
            async with self._lock:
                raced += [i for i in queue if (i.symbol, i.exchange) in self._slots]
                queue = [i for i in queue if (i.symbol, i.exchange) not in self._slots]
                batches = await self._reserve_room(queue, mode, outcomes)
            results = await asyncio.gather(
                *(connection.adapter.hold(batch, mode) for connection, batch in batches),
                return_exceptions=True,
            )
            queue = []
            async with self._lock:
                for (connection, batch), result in zip(batches, results, strict=True):
                    refused = _refusals(result, batch)
                    outcomes += self._record(connection, batch, refused, mode, holders)
                    over = [r for r in refused if r.capacity]
                    if over:
                        self._believe_full(connection, over[0])
                        queue += [r.instrument for r in over]
        return outcomes, raced

    async def _reserve_room(
        self, queue: list[Instrument], mode: int, outcomes: list[Outcome]
    ) -> list[tuple[_Connection, list[Instrument]]]:
        """Room for every symbol of ``queue``, as batches per connection, opening connections
        as needed; what finds no room gets its outcome in ``outcomes``."""
        batches = []
        while queue:
            connection = self._connection_with_room()
            if connection is None:
                try:
                    connection = await self._open_connection()
                except BrokerConnectionError as exc:
                    outcomes += [self._failure(i, mode, exc) for i in queue]
                    break
            if connection is None:
                message = self._capacity_message()
                outcomes += [
                    Outcome(i.symbol, i.exchange, mode, False, MAX_CAPACITY_REACHED, message)
                    for i in queue
                ]
                break
            batch = queue[: connection.capacity - connection.symbols - connection.reserved]
            del queue[: len(batch)]
            self._reserve(connection, batch)
            batches.append((connection, batch))
        return batches

    def _reserve(self, connection: _Connection, batch: list[Instrument]) -> None:
        """Room on ``connection`` for ``batch``; each slot is busy until the broker answers."""
        index = connection.adapter.index
        for instrument in batch:
            slot = _Slot(instrument, index)
            slot.start_work()
            self._slots[instrument.symbol, instrument.exchange] = slot
        connection.reserved += len(batch)

    def _record(
        self,
        connection: _Connection,
        batch: list[Instrument],
        refused: list[Refusal],
        mode: int,
        holders: Callable[[Instrument], dict[int, set[Hashable]]],
    ) -> list[Outcome]:
        """What the broker made of a reserved batch: the refused give their room back."""
        by_key = {(r.instrument.symbol, r.instrument.exchange): r for r in refused}
        outcomes = []
        for instrument in batch:
            key = (instrument.symbol, instrument.exchange)
            slot = self._slots[key]
            refusal = by_key.get(key)
            if refusal is None:
                slot.holders = holders(instrument)
                outcomes.append(Outcome(*key, mode, True, connection=connection.adapter.index))
            else:
                del self._slots[key]
                if not refusal.capacity:
                    outcomes.append(
                        Outcome(*key, mode, False, BrokerError.code, _refusal_text(refusal))
                    )
            slot.end_work()
        before = connection.symbols
        connection.reserved -= len(batch)
        connection.symbols += len(batch) - len(refused)
        self._log_load(connection, before, connection.symbols)
        return outcomes

    def _connection_with_room(self) -> _Connection | None:
        return next((c for c in self._connections if c.symbols + c.reserved < c.capacity), None)

    async def _open_connection(self) -> _Connection | None:
        """A new connection, or ``None`` when the pool may not open another."""
        if len(self._connections) >= self._connection_cap:
            return None
        index = len(self._connections) + 1
        if self._connections:
            previous = self._connections[-1]
            log.info(
                "[POOL] Opening connection %d: connection %d is full (%d/%d)",
                index,
                previous.adapter.index,
                previous.symbols + previous.reserved,
                previous.capacity,
            )
        with pooled_creation(self.publisher):
            adapter = self._factory(index)
        try:
            await adapter.connect()
        except ConnectionLimitError as exc:
            await adapter.close()
            self._connection_cap = len(self._connections)
            self._cap_reason = f"the broker refused connection {index}: {exc}"
            log.error(
                "[POOL] Broker allows only %d connections (configured %d): %s",
                self._connection_cap,
                self.max_connections,
                exc,
            )
            return None
        except BrokerConnectionError:
            await adapter.close()
            raise
        adapter.state_listeners.append(self._on_state)
        adapter.refusal_listeners.append(self._on_refused_after_reconnect)
        connection = _Connection(adapter, self.max_symbols_per_connection)
        self._connections.append(connection)
        log.info("[POOL] Connection %d started", index, extra={"connection": index})
        return connection

    def _log_load(self, connection: _Connection, before: int, after: int) -> None:
        """``[POOL]`` lines for the milestones a connection's load passed going up."""
        index = connection.adapter.index
        connection.peak = max(connection.peak, after)
        extra = {"connection": index}
        for milestone in range((before // MILESTONE + 1) * MILESTONE, after + 1, MILESTONE):
            if milestone < connection.capacity:
                log.info(
                    "[POOL] Connection %d: %d/%d symbols",
                    index,
                    milestone,
                    connection.capacity,
                    extra=extra,
                )
        if after >= connection.capacity > before:
            log.info(
                "[POOL] Connection %d full: %d/%d symbols",
                index,
                after,
                connection.capacity,
                extra=extra,
            )

    def _believe_full(self, connection: _Connection, refusal: Refusal) -> None:
        index = connection.adapter.index
        connection.capacity = connection.symbols
        self._cap_reason = (
            f"the broker refused subscriptions on connection {index} past {connection.symbols} "
            f"symbols ({refusal.code} {refusal.message})"
        )
        log.error(
            "[POOL] Broker refused subscriptions on connection %d past %d symbols "
            "(configured %d): %s %s; treating it as full",
            index,
            connection.symbols,
            self.max_symbols_per_connection,
            refusal.code,
            refusal.message,
            extra={"connection": index},
        )

    def _room(self) -> int:
        """Symbols the pool can hold now, given what the broker has refused."""
        open_room = sum(c.capacity for c in self._connections)
        unopened = self._connection_cap - len(self._connections)
        return open_room + unopened * self.max_symbols_per_connection

    def _capacity_message(self) -> str:
        message = (
            f"Maximum capacity reached: {self.total_symbols}/{self._room()} symbols held on "
            f"{len(self._connections)} connections (configured {self.max_connections} connections "
            f"x {self.max_symbols_per_connection} symbols)"
        )
        if self._room() < self.capacity:
            message += f"; the broker allows less than configured: {self._cap_reason}"
        return message

    @staticmethod
    def _failure(instrument: Instrument, mode: int, exc: BrokerConnectionError) -> Outcome:
        return Outcome(instrument.symbol, instrument.exchange, mode, False, exc.code, str(exc))

    def _note_peaks(self) -> None:
        self._peak_symbols = max(self._peak_symbols, self.total_symbols)
        self._peak_connections = max(self._peak_connections, len(self._connections))

    def _adapter(self, index: int) -> BrokerAdapter:
        return self._connections[index - 1].adapter

    # -- unsubscribe ---------------------------------------------------------------------------

    async def unsubscribe(self, symbol: str, exchange: str, mode: int, holder: Hashable) -> Outcome:
        return (await self.unsubscribe_many([(symbol, exchange, mode)], holder))[0]

    async def unsubscribe_many(
        self, subscriptions: Iterable[tuple[str, str, int]], holder: Hashable
    ) -> list[Outcome]:
        """Let go of each ``(symbol, exchange, mode)`` ``holder`` holds; one outcome each.

        As with :meth:`subscribe_many`, the broker is told outside the pool's lock.
        """
        outcomes: dict[tuple[str, str, int], Outcome] = {}
        keys = list(dict.fromkeys(subscriptions))
        todo = keys
        while todo:
            waiting: list[tuple[str, str, int]] = []
            busy: list[asyncio.Future[None]] = []
            released: dict[int, list[_Slot]] = {}
            moved: dict[tuple[int, int], list[_Slot]] = {}  # (connection, mode) -> moved down
            async with self._lock:
                for symbol, exchange, mode in todo:
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
                        waiting.append((symbol, exchange, mode))
                        busy.append(slot.busy)
                        continue
                    outcomes[symbol, exchange, mode] = self._held_outcome(slot, mode)
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
            if busy:
                await asyncio.wait(busy)
            todo = waiting
        self.publish_stats()
        return [outcomes[key] for key in keys]

    async def release(self, holder: Hashable) -> int:
        """Let go of everything ``holder`` holds (a client went away); returns how many."""
        held = self.holds(holder)
        await self.unsubscribe_many(held, holder)
        return len(held)

    async def _let_go(
        self, released: dict[int, list[_Slot]], moved: dict[tuple[int, int], list[_Slot]]
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
                self._connections[index - 1].symbols -= len(slots)
                for slot in slots:
                    del self._slots[slot.instrument.symbol, slot.instrument.exchange]
            for slot in itertools.chain(*released.values(), *moved.values()):
                slot.end_work()

    # -- connection events -----------------------------------------------------------------------

    def _on_state(self, adapter: BrokerAdapter, state: str, reason: str) -> None:
        connection = self._connections[adapter.index - 1]
        if state == CONNECTED:
            connection.up = True
        elif state in (RECONNECTING, SESSION_EXPIRED) and connection.up:
            connection.up = False
            holders = {
                holder
                for slot in self._slots.values()
                if slot.connection == adapter.index
                for mode_holders in slot.holders.values()
                for holder in mode_holders
            }
            for listener in self.feed_down_listeners:
                listener(adapter.index, reason, holders)
        if state == CONNECTED or reason:
            self.publish_stats()

    def _on_refused_after_reconnect(self, adapter: BrokerAdapter, refused: list[Refusal]) -> None:
        """A reconnected connection could not take back everything: place those elsewhere."""
        asyncio.get_running_loop().create_task(self._replace(adapter.index, refused))

    async def _replace(self, index: int, refused: list[Refusal]) -> None:
        """Move the symbols connection ``index`` could not take back to other connections.

        A symbol with a request under way is taken up once that is done, and only if its
        connection still does not hold it.
        """
        keys = {(r.instrument.symbol, r.instrument.exchange) for r in refused}
        while True:
            async with self._lock:
                connection = self._connections[index - 1]
                mine = [s for k in keys if (s := self._slots.get(k)) and s.connection == index]
                busy = [s.busy for s in mine if s.busy is not None]
                if not busy:
                    held = connection.adapter.held
                    slots = [s for s in mine if connection.adapter.key(s.instrument) not in held]
                    for slot in slots:
                        del self._slots[slot.instrument.symbol, slot.instrument.exchange]
                    connection.symbols -= len(slots)
                    self._believe_full(connection, refused[0])
                    break
            await asyncio.wait(busy)
        by_mode: dict[int, list[_Slot]] = {}
        for slot in slots:
            by_mode.setdefault(slot.mode, []).append(slot)
        for mode, group in by_mode.items():
            await self._move(group, mode, index)
        self.publish_stats()

    async def _move(self, slots: list[_Slot], mode: int, index: int) -> None:
        """Place symbols taken off connection ``index`` elsewhere, for all their holders."""
        saved = {(s.instrument.symbol, s.instrument.exchange): s.holders for s in slots}
        placed, raced = await self._place(
            [s.instrument for s in slots], mode, lambda i: saved[i.symbol, i.exchange]
        )
        for instrument in raced:  # another request placed it meanwhile: join its slot
            key = (instrument.symbol, instrument.exchange)
            for held_mode, holders in saved[key].items():
                for holder in holders:
                    placed += await self.subscribe_many([key], held_mode, holder)
        for outcome in placed:
            if not outcome.ok:
                log.error(
                    "[POOL] Lost %s on %s after connection %d reconnected: %s",
                    outcome.symbol,
                    outcome.exchange,
                    index,
                    outcome.message,
                )

    # -- shutdown ------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close every connection and log the peak usage."""
        async with self._lock:
            for connection in self._connections:
                await connection.adapter.close()
            log.info(
                "[POOL] Closed pool for %s/%s: peak %d symbols on %d connections",
                self.broker,
                self.user_id,
                self._peak_symbols,
                self._peak_connections,
            )
            self._connections.clear()
            self._slots.clear()


def _refusals(result: list[Refusal] | BaseException, batch: list[Instrument]) -> list[Refusal]:
    """What a request's answer refused: all of ``batch`` if the request itself failed."""
    if isinstance(result, BaseException):
        return [Refusal(i, type(result).__name__, str(result)) for i in batch]
    return result


def _refusal_text(refusal: Refusal) -> str:
    i = refusal.instrument
    if not refusal.code:
        return f"{i.symbol} on {i.exchange} not subscribed: {refusal.message}"
    return f"broker refused {i.symbol} on {i.exchange}: {refusal.code} {refusal.message}"
