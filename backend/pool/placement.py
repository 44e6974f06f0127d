"""Placement: which connection a new symbol goes to, and when the pool opens another.

- Placement fills first: a symbol already held stays where it is; a new one goes to the first
  connection with room; a new connection opens only when every open one is full; past
  ``MAX_WEBSOCKET_CONNECTIONS`` the answer is ``MAX_CAPACITY_REACHED``.
- When the broker allows less than the settings do (a connection refused with HTTP 429, a
  subscription refused with E1002), the pool believes the broker: that connection is full, or
  the connection cap is what is open, and the symbol goes elsewhere if it can.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable

from backend.brokers.adapter import BrokerAdapter, Refusal, pooled_creation
from backend.brokers.errors import BrokerConnectionError, BrokerError, ConnectionLimitError
from backend.bus.publisher import ZmqPublisher
from backend.feed import MAX_CAPACITY_REACHED
from backend.instruments.master import Instrument
from backend.logs.wording import counted
from backend.pool.load_log import log_load
from backend.pool.outcomes import Outcome, refusal_text, refusals
from backend.pool.records import PooledConnection, Slot

log = logging.getLogger("feedpool.pool")

AdapterFactory = Callable[[int], BrokerAdapter]
#: Who holds a symbol once it is placed: its holders by mode, given its instrument.
Holders = Callable[[Instrument], dict[int, set[Hashable]]]


class Placement:
    """Puts new symbols on the pool's connections, opening connections as they are needed.

    It works on the pool's ``slots`` and ``connections`` under the pool's ``lock``. Each
    connection it opens tells ``on_state`` of its states and ``on_refused`` of what it could not
    take back after a reconnect.
    """

    def __init__(
        self,
        slots: dict[tuple[str, str], Slot],
        connections: list[PooledConnection],
        lock: asyncio.Lock,
        adapter_factory: AdapterFactory,
        publisher: ZmqPublisher,
        *,
        max_symbols_per_connection: int,
        max_connections: int,
        first_connection: int = 1,
        on_state: Callable[[BrokerAdapter, str, str], None],
        on_refused: Callable[[BrokerAdapter, list[Refusal]], None],
    ) -> None:
        self._slots = slots
        self._connections = connections
        self._lock = lock
        self._factory = adapter_factory
        self._publisher = publisher
        self._max_symbols_per_connection = max_symbols_per_connection
        self._max_connections = max_connections
        self._first = first_connection
        self._connection_cap = max_connections  # lowered when the broker refuses a connection
        self._cap_reason = ""
        self._on_state = on_state
        self._on_refused = on_refused

    async def place(
        self, instruments: list[Instrument], mode: int, holders: Holders
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
                    refused = refusals(result, batch)
                    outcomes += self._record(connection, batch, refused, mode, holders)
                    over = [r for r in refused if r.capacity]
                    if over:
                        self.believe_full(connection, over[0])
                        queue += [r.instrument for r in over]
        return outcomes, raced

    def believe_full(self, connection: PooledConnection, refusal: Refusal) -> None:
        """The broker refused ``connection`` more symbols: it is full with what it holds."""
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
            self._max_symbols_per_connection,
            refusal.code,
            refusal.message,
            extra={"connection": index},
        )

    def connection(self, index: int) -> PooledConnection:
        """The record of connection ``index``."""
        return self._connections[index - self._first]

    def room(self) -> int:
        """Symbols the pool can hold now, given what the broker has refused."""
        open_room = sum(c.capacity for c in self._connections)
        unopened = self._connection_cap - len(self._connections)
        return open_room + unopened * self._max_symbols_per_connection

    async def _reserve_room(
        self, queue: list[Instrument], mode: int, outcomes: list[Outcome]
    ) -> list[tuple[PooledConnection, list[Instrument]]]:
        """Room for every symbol of ``queue``, as batches per connection, opening connections
        as needed; what finds no room gets its outcome in ``outcomes``."""
        batches = []
        while queue:
            connection = self._connection_with_room()
            if connection is None:
                try:
                    connection = await self._open_connection()
                except BrokerConnectionError as exc:
                    outcomes += [
                        Outcome(i.symbol, i.exchange, mode, False, exc.code, str(exc))
                        for i in queue
                    ]
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

    def _reserve(self, connection: PooledConnection, batch: list[Instrument]) -> None:
        """Room on ``connection`` for ``batch``; each slot is busy until the broker answers."""
        index = connection.adapter.index
        for instrument in batch:
            slot = Slot(instrument, index)
            slot.start_work()
            self._slots[instrument.symbol, instrument.exchange] = slot
        connection.reserved += len(batch)

    def _record(
        self,
        connection: PooledConnection,
        batch: list[Instrument],
        refused: list[Refusal],
        mode: int,
        holders: Holders,
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
                        Outcome(*key, mode, False, BrokerError.code, refusal_text(refusal))
                    )
            slot.end_work()
        before = connection.symbols
        connection.reserved -= len(batch)
        connection.symbols += len(batch) - len(refused)
        connection.peak = max(connection.peak, connection.symbols)
        log_load(connection, before, connection.symbols)
        return outcomes

    def _connection_with_room(self) -> PooledConnection | None:
        return next((c for c in self._connections if c.symbols + c.reserved < c.capacity), None)

    async def _open_connection(self) -> PooledConnection | None:
        """A new connection, or ``None`` when the pool may not open another."""
        if len(self._connections) >= self._connection_cap:
            return None
        index = self._first + len(self._connections)
        if self._connections:
            previous = self._connections[-1]
            log.info(
                "[POOL] Opening connection %d: connection %d is full (%d/%d)",
                index,
                previous.adapter.index,
                previous.symbols + previous.reserved,
                previous.capacity,
            )
        with pooled_creation(self._publisher):
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
                self._max_connections,
                exc,
            )
            return None
        except BrokerConnectionError:
            await adapter.close()
            raise
        adapter.state_listeners.append(self._on_state)
        adapter.refusal_listeners.append(self._on_refused)
        connection = PooledConnection(adapter, self._max_symbols_per_connection)
        self._connections.append(connection)
        log.info("[POOL] Connection %d started", index, extra={"connection": index})
        return connection

    def _capacity_message(self) -> str:
        held = len(self._slots)
        message = (
            f"Maximum capacity reached: {held}/{self.room()} symbols held on "
            f"{counted(len(self._connections), 'connection')} (configured "
            f"{counted(self._max_connections, 'connection')} x "
            f"{counted(self._max_symbols_per_connection, 'symbol')})"
        )
        if self.room() < self._max_connections * self._max_symbols_per_connection:
            message += f"; the broker allows less than configured: {self._cap_reason}"
        return message
