"""The settings dialog: the broker account or accounts, pool limits and ports, saved to
settings.json.

The brokers and their credential fields come from :data:`backend.brokers.BROKERS`; the pool's
limits show the chosen broker's real ones until the trader sets others. **Several accounts**
lists the broker accounts instead (:class:`~desktop.settings.accounts_editor.AccountsEditor`),
each with its own credentials, limits and **Log in**, saved as ``ACCOUNTS`` with
``BROKER=accounts``, or with ``BROKER=simulator`` when the simulator plays them. A list of one
account is saved as today's settings of one broker, so that a trader with one account keeps
exactly the settings of before.

Open it with ``open()``: it is window-modal and does not block the event loop. Saving checks the
values with :mod:`backend.runtime.settings` first; a bad one is named in the dialog (with its
account), which stays open. Credentials are password fields and are never logged; an account's
go to the keychain under its name.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from backend.brokers import BROKERS
from backend.runtime.settings import ACCOUNTS as SEVERAL
from backend.runtime.settings import SIMULATOR, SettingsError
from desktop.dialog_parts import error_label, save_cancel_buttons
from desktop.settings.accounts_editor import AccountsEditor
from desktop.settings.fields import field_group, show_limits
from desktop.settings.file import (
    ACCOUNTS,
    current_values,
    default_settings_path,
    default_values,
    file_values,
    validate,
    write_settings,
)

BROKER_CHOICES = {
    SIMULATOR: "Simulator",
    **{b.name: b.label for b in BROKERS.values()},
    SEVERAL: "Several accounts",
}
POOL_FIELDS = {
    "MAX_SYMBOLS_PER_WEBSOCKET": "Symbols per connection",
    "MAX_WEBSOCKET_CONNECTIONS": "Connections",
}
PORT_FIELDS = {"ZMQ_PORT": "Bus port (ZeroMQ)", "WEBSOCKET_PORT": "WebSocket API port"}
NO_ACCOUNTS = "Add an account, or choose one broker"
#: How an error names an account: by its place in the list.
ACCOUNT_NUMBER = re.compile(r"account (\d+)")


class SettingsDialog(QDialog):
    """Edits the settings file; emits :attr:`applied` after saving."""

    #: The saved :class:`backend.runtime.settings.Settings` (credentials masked in its repr):
    #: restart the backend with them.
    applied = Signal(object)
    #: Saved, and the trader asked to log in to the named account in the browser.
    log_in_requested = Signal(str)

    def __init__(self, path: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("FeedPool settings")
        self.path = path or default_settings_path()
        self.fields: dict[str, QLineEdit] = {}
        self._chosen = SIMULATOR  # the broker the fields were last shown for

        self.broker_combo = QComboBox(self)
        for broker, label in BROKER_CHOICES.items():
            self.broker_combo.addItem(label, broker)
        self.broker_combo.currentIndexChanged.connect(self._enable_broker_fields)
        self.simulated_combo = QComboBox(self)
        for broker in BROKERS.values():
            self.simulated_combo.addItem(broker.label, broker.name)
        self.simulated_combo.currentIndexChanged.connect(self._enable_broker_fields)
        self.simulated_check = QCheckBox("The simulator plays the accounts", self)
        self.simulated_check.toggled.connect(self._enable_broker_fields)
        broker_form = QFormLayout()
        broker_form.addRow("Broker", self.broker_combo)
        broker_form.addRow("Simulator speaks", self.simulated_combo)
        broker_form.addRow(self.simulated_check)
        self.broker_groups = {
            broker.name: self._group(broker.label, {s.name: s.label for s in broker.settings})
            for broker in BROKERS.values()
        }
        for group in self.broker_groups.values():
            broker_form.addRow(group)
        self.accounts = AccountsEditor(self)
        self.accounts.log_in_requested.connect(self._save_and_log_in)
        broker_form.addRow(self.accounts)

        self.error_label = error_label(self)
        buttons = save_cancel_buttons(self, self.save, self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(broker_form)
        self.pool_group = self._group("Pool limits", POOL_FIELDS)
        layout.addWidget(self.pool_group)
        layout.addWidget(self._group("Ports", PORT_FIELDS))
        layout.addWidget(QLabel("The backend restarts with the new settings.", self))
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        self.load()

    def _group(self, title: str, labels: dict[str, str]) -> QGroupBox:
        group, fields = field_group(title, labels, self)
        self.fields.update(fields)
        return group

    @property
    def several(self) -> bool:
        """Whether the dialog lists broker accounts."""
        return self.broker_combo.currentData() == SEVERAL

    def load(self) -> None:
        """Show the saved settings (defaults where nothing is saved)."""
        problem = None
        try:
            values = current_values(self.path)
        except SettingsError as exc:
            values = default_values()
            problem = f"{exc}. Saving replaces the file."
        self._file_readable = problem is None
        accounts = json.loads(values[ACCOUNTS]) if values[ACCOUNTS] else []
        self.accounts.set_entries(accounts)
        self.simulated_check.setChecked(values["BROKER"] == SIMULATOR)
        chosen = SEVERAL if accounts else values["BROKER"]
        self._chosen = chosen
        self.broker_combo.setCurrentIndex(max(self.broker_combo.findData(chosen), 0))
        simulated = self.simulated_combo.findData(values["SIMULATOR_BROKER"])
        self.simulated_combo.setCurrentIndex(max(simulated, 0))
        for name, field in self.fields.items():
            field.setText(values[name])
        self._enable_broker_fields()
        if problem:
            self._show_error(problem)
        else:
            self.error_label.hide()

    def open(self) -> None:
        self.load()
        super().open()

    def values(self) -> dict[str, str]:
        """The dialog's values by setting name, as typed (``ACCOUNTS`` as JSON text)."""
        values = {name: field.text() for name, field in self.fields.items()}
        values["BROKER"] = self.broker_combo.currentData()
        values["SIMULATOR_BROKER"] = self.simulated_combo.currentData()
        values[ACCOUNTS] = ""
        if self.several:
            values["BROKER"] = SIMULATOR if self.simulated_check.isChecked() else SEVERAL
            values[ACCOUNTS] = json.dumps(self.accounts.entries())
        return values

    def save(self) -> bool:
        """Check and save; on a bad value name it, focus its field and stay open."""
        entries = self.accounts.entries() if self.several else []
        if self.several and not entries:
            self._show_error(NO_ACCOUNTS)
            return False
        if len(entries) == 1:
            self._show_one_account(entries[0])
            entries = []
        try:
            settings = validate(self.values())
        except SettingsError as exc:
            self._show_error(str(exc))
            self._focus(exc)
            return False
        names = [name for name in self.values() if name != ACCOUNTS]
        try:
            values = file_values(settings, names)
            if entries:
                values[ACCOUNTS] = entries
                write_settings(values, self.path, merge=self._file_readable)
            else:
                write_settings(values, self.path, self._file_readable, remove=(ACCOUNTS,))
        except OSError as exc:
            self._show_error(f"Could not save {self.path}: {exc.strerror or exc}")
            return False
        self.error_label.hide()
        self.applied.emit(settings)
        self.accept()
        return True

    def _save_and_log_in(self, account: str) -> None:
        if self.save():
            self.log_in_requested.emit(account)

    def _show_one_account(self, entry: dict[str, object]) -> None:
        """Show a list of one account as the settings of its one broker."""
        broker = str(entry["broker"])
        if self.simulated_check.isChecked():
            self.simulated_combo.setCurrentIndex(self.simulated_combo.findData(broker))
            broker = SIMULATOR
        self.broker_combo.setCurrentIndex(self.broker_combo.findData(broker))
        for name in (*(s.name for s in BROKERS[str(entry["broker"])].settings), *POOL_FIELDS):
            self.fields[name].setText(str(entry.get(name, "")))

    def _show_several(self) -> None:
        """Start the list of accounts with the one the fields showed."""
        broker = self._chosen
        self.simulated_check.setChecked(broker == SIMULATOR)
        if broker == SIMULATOR:
            broker = self.simulated_combo.currentData()
        names = (*(s.name for s in BROKERS[broker].settings), *POOL_FIELDS)
        entry = {name: self.fields[name].text() for name in names}
        self.accounts.set_entries([{"name": broker, "broker": broker, **entry}])

    def _focus(self, error: SettingsError) -> None:
        """Show the field ``error`` names: in the account it names, if it names one."""
        field = self.fields.get(error.name)
        if self.several:
            number = ACCOUNT_NUMBER.search(str(error))
            names = [repr(entry["name"]) for entry in self.accounts.entries()]
            named = [row for row, name in enumerate(names) if name in str(error)]
            row = int(number.group(1)) - 1 if number else (named[0] if named else None)
            if row is not None:
                self.accounts.choose(row)
            named_field = self.accounts.fields.get(error.name) or next(
                (f for n, f in self.accounts.fields.items() if n in str(error)), None
            )
            field = named_field or field
        if field is not None:
            field.setFocus()
            field.selectAll()

    def _show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()

    def _enable_broker_fields(self) -> None:
        chosen = self.broker_combo.currentData()
        several = chosen == SEVERAL
        if several and self._chosen != SEVERAL and not self.accounts.entries():
            self._show_several()
        self._chosen = chosen
        self.simulated_combo.setEnabled(chosen == SIMULATOR)
        self.simulated_check.setVisible(several)
        self.accounts.setVisible(several)
        self.accounts.set_simulated(self.simulated_check.isChecked())
        self.pool_group.setVisible(not several)
        for name, group in self.broker_groups.items():
            group.setVisible(name == chosen)
        if not several:
            broker = BROKERS[self.simulated_combo.currentData() if chosen == SIMULATOR else chosen]
            show_limits(self.fields, broker)
