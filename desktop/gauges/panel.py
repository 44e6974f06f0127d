"""The gauges panel: one total gauge for the pool and one gauge per pooled connection.

Fed by ``SYS.POOL`` messages through :meth:`ConnectionGauges.update_stats`; a connection's gauge
appears when the pool opens that connection and goes when the pool no longer lists it. When the
broker has ended the account's session a **Log in again** button shows under the gauges. With
several broker accounts the connections' gauges are grouped by account, in the trader's order,
each group under its account's heading and with its own **Log in again**
(:class:`~desktop.gauges.account_group.AccountGroup`); the total gauge sums them all.

The backend's state comes through :meth:`ConnectionGauges.set_backend_state`: while the backend
does not serve (starting, restarting, down, ...), and after it serves again until its first
statistics, every gauge says so in the state's colour instead of its connection's last state.
"""

from __future__ import annotations

import msgspec
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from backend.bus.messages import ConnectionStats, PoolStats
from desktop.alarms.board import backend_serving
from desktop.gauges.account_group import AccountGroup
from desktop.gauges.gauge import Gauge
from desktop.gauges.readings import (
    EMPTY_POOL,
    GaugeReading,
    backend_reading,
    connection_reading,
    needs_login,
    pool_reading,
)

#: What the gauges say between the backend serving again and its first statistics.
AWAITING_FIGURES = "waiting for its first figures"


class ConnectionGauges(QWidget):
    """The pool's total gauge followed by its connections' gauges in index order."""

    #: The trader asked to log in to the broker again: to the named account ("": the one).
    log_in_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.total = Gauge(parent=self)
        self._gauges: dict[int, Gauge] = {}
        self._connections: dict[int, ConnectionStats] = {}
        #: Each account's group, by name, while there are several accounts.
        self._groups: dict[str, AccountGroup] = {}
        self._pool: PoolStats | None = None
        #: The backend's state and why, while its statistics are not the gauges' to show.
        self._backend: tuple[str, str] | None = None
        self._serving = False
        self.log_in_button = QPushButton("Log in again", self)
        self.log_in_button.setToolTip("The broker ended the session: log in to it again")
        self.log_in_button.clicked.connect(lambda: self.log_in_requested.emit(""))
        self.log_in_button.hide()
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        row = QWidget(self)
        column.addWidget(row, 1)
        column.addWidget(self.log_in_button)
        self._layout = QHBoxLayout(row)
        self._layout.addWidget(self.total)
        separator = QFrame(self)
        separator.setFrameShape(QFrame.Shape.VLine)
        separator.setFrameShadow(QFrame.Shadow.Sunken)
        self._layout.addWidget(separator)
        self._layout.addStretch(1)

    @property
    def gauges(self) -> dict[int, Gauge]:
        """The connection gauges by connection index."""
        return dict(self._gauges)

    @property
    def groups(self) -> dict[str, AccountGroup]:
        """The accounts' groups by name, in the trader's order; none with one account."""
        return dict(self._groups)

    def update_stats(self, pool: PoolStats) -> None:
        """Show a ``SYS.POOL`` message."""
        if self._serving:
            self._backend = None
        self._pool = pool
        self.total.set_reading(self._shown(pool_reading(pool)))
        accounts = pool.accounts if len(pool.accounts) > 1 else []
        if [account.name for account in accounts] != list(self._groups):
            self._group([account.name for account in accounts])
        for account in accounts:
            self._groups[account.name].show_account(account)
        self.log_in_button.setVisible(not accounts and needs_login(pool))
        listed = {connection.index: connection for connection in pool.connections}
        for index in set(self._gauges) - set(listed):
            self._remove(index)
        for connection in pool.connections:
            self._show_connection(connection)

    def _remove(self, index: int) -> None:
        gauge = self._gauges.pop(index)
        self._connections.pop(index)
        gauge.hide()
        gauge.deleteLater()

    def _group(self, names: list[str]) -> None:
        """Group the gauges under these accounts (none: one account, ungrouped), anew."""
        for index in list(self._gauges):
            self._remove(index)
        for group in self._groups.values():
            group.hide()
            group.deleteLater()
        self._groups = {}
        for position, name in enumerate(names):
            group = self._groups[name] = AccountGroup(name, self)
            group.log_in_requested.connect(self.log_in_requested)
            self._layout.insertWidget(2 + position, group, 1)  # after the total and separator

    def set_connection_state(self, index: int, state: str) -> None:
        """Recolour a connection's gauge at once (from ``SYS.HEALTH``), before the next stats."""
        if index in self._connections:
            self._show_connection(msgspec.structs.replace(self._connections[index], state=state))

    def set_backend_state(self, state: str, detail: str = "") -> None:
        """The backend's state (e.g. ``restarting``) and why: shown on every gauge until it
        serves and has published its statistics again."""
        self._serving = backend_serving(state)
        if not self._serving:
            self._backend = (state, detail)
        elif self._backend is not None:
            self._backend = (state, AWAITING_FIGURES)
        else:
            return
        self.total.set_reading(self._shown(pool_reading(self._pool) if self._pool else EMPTY_POOL))
        for connection in list(self._connections.values()):
            self._show_connection(connection)

    def _shown(self, reading: GaugeReading) -> GaugeReading:
        """``reading``, or what it says while the backend's statistics are not to be shown."""
        return reading if self._backend is None else backend_reading(reading, *self._backend)

    def _show_connection(self, connection: ConnectionStats) -> None:
        self._connections[connection.index] = connection
        reading = self._shown(connection_reading(connection))
        gauge = self._gauges.get(connection.index)
        if gauge is not None:
            gauge.set_reading(reading)
            return
        group = self._groups.get(connection.account)
        gauge = self._gauges[connection.index] = Gauge(reading, group or self)
        siblings = sorted(
            index
            for index in self._gauges
            if self._groups.get(self._connections[index].account) is group
        )
        position = siblings.index(connection.index)
        if group is not None:
            group.row.insertWidget(position, gauge)
        else:  # after the total, the separator and any groups
            self._layout.insertWidget(2 + len(self._groups) + position, gauge)
