"""The settings dialog's broker accounts: their list and the chosen account's settings.

The list is the trader's order, the order accounts are filled in; **Add**, **Remove**, **Up** and
**Down** change it. The chosen account's name, broker, that broker's settings (its credential
fields, from :data:`backend.brokers.BROKERS`) and its own limits are edited below the list; each
account is kept as an entry of ``ACCOUNTS`` (:mod:`backend.runtime.accounts`), its values as
typed. An account whose broker logs in in the browser has its own **Log in**.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from backend.brokers import BROKERS
from backend.runtime.accounts import ACCOUNT_LIMITS
from desktop.settings.fields import field_group, show_limits
from desktop.settings.file import AccountEntry

LIMIT_LABELS = {
    "MAX_SYMBOLS_PER_WEBSOCKET": "Symbols per connection",
    "MAX_WEBSOCKET_CONNECTIONS": "Connections",
    "BROKER_USER_ID": "User id (optional)",
    "INSTRUMENT_MASTER": "Instrument master (optional)",
}
#: The limits saved as whole numbers.
WHOLE_NUMBERS = ("MAX_SYMBOLS_PER_WEBSOCKET", "MAX_WEBSOCKET_CONNECTIONS")
LIST_ROWS = 4


def new_name(broker: str, taken: list[str]) -> str:
    """A name for a new ``broker`` account that no account in ``taken`` has."""
    name, number = broker, 1
    while name.lower() in (t.lower() for t in taken):
        number += 1
        name = f"{broker}-{number}"
    return name


class AccountsEditor(QWidget):
    """Edits a list of account entries; :meth:`entries` gives them back as typed."""

    #: The trader asked to log in to the named account in the browser.
    log_in_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._entries: list[AccountEntry] = []
        self._shown = -1  # the entry the fields show
        self.simulated = False  # the simulator plays the accounts: nobody logs in

        self.list = QListWidget(self)
        self.list.setFixedHeight(self.list.fontMetrics().lineSpacing() * LIST_ROWS + 12)
        self.list.currentRowChanged.connect(self._show)
        listed = QVBoxLayout()  # the list, its buttons, and the chosen account's limits
        listed.addWidget(self.list)
        listed.addLayout(self._list_buttons())

        self.name_field = QLineEdit(self)
        self.name_field.setObjectName("name")
        self.name_field.textEdited.connect(self._rename)
        self.broker_combo = QComboBox(self)
        for broker in BROKERS.values():
            self.broker_combo.addItem(broker.label, broker.name)
        self.broker_combo.currentIndexChanged.connect(self._show_broker)
        self.log_in_button = QPushButton(self)
        self.log_in_button.setAutoDefault(False)
        self.log_in_button.setToolTip("Save the settings, then log in to this account")
        self.log_in_button.clicked.connect(
            lambda: self.log_in_requested.emit(self.name_field.text().strip())
        )
        form = QFormLayout()
        form.addRow("Name", self.name_field)
        form.addRow("Broker", self.broker_combo)
        chosen = QVBoxLayout()  # the chosen account's name, broker and broker's settings
        chosen.addLayout(form)
        #: The fields of the chosen account, by setting name: every broker's, and the limits.
        self.fields: dict[str, QLineEdit] = {}
        self.broker_groups: dict[str, QGroupBox] = {}
        for broker in BROKERS.values():
            labels = {s.name: s.label for s in broker.settings}
            group, fields = field_group(broker.label, labels, self)
            self.broker_groups[broker.name] = group
            self.fields.update(fields)
            chosen.addWidget(group)  # a box layout: the hidden groups take no room
        self.limits_group, limits = field_group(
            "The account's limits", {n: LIMIT_LABELS.get(n, n) for n in ACCOUNT_LIMITS}, self
        )
        self.fields.update(limits)
        listed.addWidget(self.limits_group)
        listed.addWidget(self.log_in_button)
        listed.addStretch(1)
        chosen.addStretch(1)

        layout = QHBoxLayout(self)  # the list on the left, the chosen account on the right
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(listed)
        layout.addLayout(chosen)
        self._enable()

    def _list_buttons(self) -> QHBoxLayout:
        """Add, Remove, Up and Down, beside the list."""
        self.add_button = QPushButton("Add", self)
        self.remove_button = QPushButton("Remove", self)
        self.up_button = QPushButton("Up", self)
        self.down_button = QPushButton("Down", self)
        self.add_button.clicked.connect(lambda _=False: self.add())
        self.remove_button.clicked.connect(self.remove)
        self.up_button.clicked.connect(lambda: self.move(-1))
        self.down_button.clicked.connect(lambda: self.move(1))
        buttons = QHBoxLayout()
        for button in (self.add_button, self.remove_button, self.up_button, self.down_button):
            button.setAutoDefault(False)
            buttons.addWidget(button)
        return buttons

    def set_entries(self, entries: list[AccountEntry]) -> None:
        """Show these accounts (their values as text), the first chosen."""
        self._shown = -1
        self._entries = [{k: "" if v is None else str(v) for k, v in e.items()} for e in entries]
        self.list.clear()
        self.list.addItems([entry.get("name", "") for entry in self._entries])
        self.list.setCurrentRow(0 if self._entries else -1)
        self._enable()

    def entries(self) -> list[AccountEntry]:
        """The accounts in order: name, broker, and the values set of that broker's settings
        (but their defaults) and the account's limits (as whole numbers where they are)."""
        self._keep()
        kept: list[AccountEntry] = []
        for entry in self._entries:
            broker = BROKERS[entry["broker"]]
            defaults = {s.name: s.default for s in broker.settings}
            values: AccountEntry = {"name": entry.get("name", "").strip(), "broker": broker.name}
            for name in [*defaults, *ACCOUNT_LIMITS]:
                text = entry.get(name, "").strip()
                if text and text != defaults.get(name):
                    values[name] = int(text) if name in WHOLE_NUMBERS and text.isdigit() else text
            kept.append(values)
        return kept

    def add(self, broker: str = "") -> None:
        """Add an account (of ``broker``, else of the chosen account's broker) and choose it."""
        broker = broker or self.broker_combo.currentData() or next(iter(BROKERS))
        self._keep()
        name = new_name(broker, [e.get("name", "") for e in self._entries])
        self._entries.append({"name": name, "broker": broker})
        self.list.addItem(name)
        self.list.setCurrentRow(len(self._entries) - 1)
        self._enable()

    def remove(self) -> None:
        row = self.list.currentRow()
        if row < 0:
            return
        self._shown = -1  # its fields are not kept
        del self._entries[row]
        self.list.takeItem(row)
        self._show(self.list.currentRow())
        self._enable()

    def move(self, step: int) -> None:
        """Move the chosen account ``step`` places up (-1) or down (1) the order."""
        row = self.list.currentRow()
        target = row + step
        if row < 0 or not 0 <= target < len(self._entries):
            return
        self._keep()
        self._shown = -1
        self._entries.insert(target, self._entries.pop(row))
        self.list.insertItem(target, self.list.takeItem(row))
        self.list.setCurrentRow(target)

    def choose(self, row: int) -> None:
        self.list.setCurrentRow(row)

    def row_named(self, name: str) -> int | None:
        names = [e.get("name", "") for e in self._entries]
        return names.index(name) if name in names else None

    def set_simulated(self, simulated: bool) -> None:
        """With the simulator playing the accounts, nobody logs in to them."""
        self.simulated = simulated
        self._enable()

    def _keep(self) -> None:
        """Keep what the fields show in their entry."""
        if not 0 <= self._shown < len(self._entries):
            return
        entry = self._entries[self._shown]
        entry["name"] = self.name_field.text()
        entry["broker"] = self.broker_combo.currentData()
        broker = BROKERS[entry["broker"]]
        for name in [s.name for s in broker.settings] + list(ACCOUNT_LIMITS):
            entry[name] = self.fields[name].text()

    def _show(self, row: int) -> None:
        self._keep()
        self._shown = row
        entry = self._entries[row] if 0 <= row < len(self._entries) else {}
        self.name_field.setText(entry.get("name", ""))
        broker = entry.get("broker") or next(iter(BROKERS))
        self.broker_combo.setCurrentIndex(max(self.broker_combo.findData(broker), 0))
        defaults = {s.name: s.default for b in BROKERS.values() for s in b.settings}
        for name, field in self.fields.items():
            field.setText(entry.get(name, defaults.get(name, "")))
        self._show_broker()

    def _rename(self, text: str) -> None:
        item = self.list.currentItem()
        if item is not None:
            item.setText(text)

    def _show_broker(self) -> None:
        broker = BROKERS[self.broker_combo.currentData()]
        for name, group in self.broker_groups.items():
            group.setVisible(name == broker.name)
        show_limits(self.fields, broker)
        self.log_in_button.setText(f"Log in to {broker.label}")
        self._enable()

    def _enable(self) -> None:
        row, count = self.list.currentRow(), len(self._entries)
        chosen = 0 <= row < count
        for widget in (self.name_field, self.broker_combo, self.remove_button):
            widget.setEnabled(chosen)
        self.up_button.setEnabled(chosen and row > 0)
        self.down_button.setEnabled(chosen and row < count - 1)
        broker = BROKERS[self.broker_combo.currentData()]
        browser = broker.browser_login is not None and not self.simulated
        self.log_in_button.setVisible(browser)
        self.log_in_button.setEnabled(chosen)
        for group in (*self.broker_groups.values(), self.limits_group):
            group.setEnabled(chosen)
