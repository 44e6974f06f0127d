"""The Clients table: one row per client of the backend's WebSocket API, from ``SYS.CLIENTS``.

Each second's message replaces the rows: a client that left is removed, one that came is added
at the end (client numbers only grow), and the others' cells are refreshed in place, so a
selection stays on its client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex

from backend.bus.messages import ClientStats
from desktop.colours import STATE_COLOURS
from desktop.tables.column_model import ColumnTableModel
from desktop.tables.columns import Column

OWN_MARK = "this app"


@dataclass(frozen=True, slots=True)
class ClientRow:
    """A client, and whether it is this app's own feed."""

    stats: ClientStats
    own: bool = False

    @property
    def name(self) -> str:
        return f"{self.stats.client} ({OWN_MARK})" if self.own else str(self.stats.client)


def _count(number: int) -> str:
    return f"{number:,}"


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%H:%M:%S")


CLIENT_COLUMNS = (
    Column("name", "Client", width=12, about="The client's number; this app's own feed marked"),
    Column("stats.peer", "Address", width=15, about="Where it connects from"),
    Column("stats.connected_at", "Since", width=8, fmt=_clock, about="When it connected"),
    Column(
        "stats.authenticated",
        "Auth",
        width=3,
        fmt=lambda done: "yes" if done else "no",
        colour=lambda row: None if row.stats.authenticated else STATE_COLOURS["reconnecting"],
        about="Whether it has given the API key",
    ),
    Column(
        "stats.subscriptions",
        "Subs",
        width=5,
        align="right",
        fmt=_count,
        about="Subscriptions it holds",
    ),
    Column("stats.sent", "Sent", width=9, align="right", fmt=_count, about="Frames written to it"),
    Column(
        "stats.queued",
        "Queued",
        width=5,
        align="right",
        fmt=_count,
        about="Frames waiting in its outbox",
    ),
    Column(
        "stats.conflated",
        "Conflated",
        width=7,
        align="right",
        fmt=_count,
        about="Ticks its outbox replaced with newer ones of the same subscription",
    ),
    Column(
        "stats.throttled",
        "Throttled",
        width=7,
        align="right",
        fmt=_count,
        about="Ticks its rate limit replaced with newer ones",
    ),
)


class ClientsModel(ColumnTableModel):
    """The clients of the last ``SYS.CLIENTS`` message, in number order."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(CLIENT_COLUMNS, parent)
        self._rows: list[ClientRow] = []

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self._rows)

    def row_object(self, row: int) -> ClientRow:
        return self._rows[row]

    def rows(self) -> list[ClientRow]:
        return list(self._rows)

    def update_clients(self, clients: list[ClientStats], own_peer: str = "") -> None:
        """Show ``clients``; the one connected from ``own_peer`` is this app's feed."""
        latest = {c.client: ClientRow(c, bool(own_peer) and c.peer == own_peer) for c in clients}
        for row in reversed(range(len(self._rows))):
            if self._rows[row].stats.client not in latest:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._rows[row]
                self.endRemoveRows()
        shown = {row.stats.client for row in self._rows}
        self._rows = [latest[row.stats.client] for row in self._rows]
        if self._rows:
            last = self.index(len(self._rows) - 1, len(self.columns) - 1)
            self.dataChanged.emit(self.index(0, 0), last)
        added = [latest[number] for number in sorted(latest) if number not in shown]
        if added:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(added) - 1)
            self._rows.extend(added)
            self.endInsertRows()
