"""The settings dialog: broker and credentials, pool limits and ports, saved to settings.json.

The brokers and their credential fields come from :data:`backend.brokers.BROKERS`; the pool's
limits show the chosen broker's real ones until the trader sets others.

Open it with ``open()``: it is window-modal and does not block the event loop. Saving checks the
values with :mod:`backend.runtime.settings` first; a bad one is named in the dialog, which stays
open. Credentials are password fields and are never logged.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
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
from backend.runtime.settings import SECRET_SETTINGS, SIMULATOR, SettingsError
from desktop.dialog_parts import error_label, save_cancel_buttons
from desktop.settings.file import (
    current_values,
    default_settings_path,
    default_values,
    file_values,
    validate,
    write_settings,
)

BROKER_CHOICES = {SIMULATOR: "Simulator", **{b.name: b.label for b in BROKERS.values()}}
POOL_FIELDS = {
    "MAX_SYMBOLS_PER_WEBSOCKET": "Symbols per connection",
    "MAX_WEBSOCKET_CONNECTIONS": "Connections",
}
PORT_FIELDS = {"ZMQ_PORT": "Bus port (ZeroMQ)", "WEBSOCKET_PORT": "WebSocket API port"}
#: A field's width, in average characters: a broker's URLs and the limits' hints in full.
FIELD_CHARACTERS = 48


class SettingsDialog(QDialog):
    """Edits the settings file; emits :attr:`applied` after saving."""

    #: The saved :class:`backend.runtime.settings.Settings` (credentials masked in its repr):
    #: restart the backend with them.
    applied = Signal(object)

    def __init__(self, path: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("FeedPool settings")
        self.path = path or default_settings_path()
        self.fields: dict[str, QLineEdit] = {}

        self.broker_combo = QComboBox(self)
        for broker, label in BROKER_CHOICES.items():
            self.broker_combo.addItem(label, broker)
        self.broker_combo.currentIndexChanged.connect(self._enable_broker_fields)
        self.simulated_combo = QComboBox(self)
        for broker in BROKERS.values():
            self.simulated_combo.addItem(broker.label, broker.name)
        self.simulated_combo.currentIndexChanged.connect(self._enable_broker_fields)
        broker_form = QFormLayout()
        broker_form.addRow("Broker", self.broker_combo)
        broker_form.addRow("Simulator speaks", self.simulated_combo)
        self.broker_groups = {
            broker.name: self._group(broker.label, {s.name: s.label for s in broker.settings})
            for broker in BROKERS.values()
        }
        for group in self.broker_groups.values():
            broker_form.addRow(group)

        self.error_label = error_label(self)
        buttons = save_cancel_buttons(self, self.save, self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(broker_form)
        layout.addWidget(self._group("Pool limits", POOL_FIELDS))
        layout.addWidget(self._group("Ports", PORT_FIELDS))
        layout.addWidget(QLabel("The backend restarts with the new settings.", self))
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        self.load()

    def _group(self, title: str, labels: dict[str, str]) -> QGroupBox:
        group = QGroupBox(title, self)
        form = QFormLayout(group)
        for name, label in labels.items():
            field = QLineEdit(group)
            field.setObjectName(name)
            field.setMinimumWidth(field.fontMetrics().averageCharWidth() * FIELD_CHARACTERS)
            if name in SECRET_SETTINGS:
                field.setEchoMode(QLineEdit.EchoMode.Password)
            form.addRow(label, field)
            self.fields[name] = field
        return group

    def load(self) -> None:
        """Show the saved settings (defaults where nothing is saved)."""
        problem = None
        try:
            values = current_values(self.path)
        except SettingsError as exc:
            values = default_values()
            problem = f"{exc}. Saving replaces the file."
        self._file_readable = problem is None
        self.broker_combo.setCurrentIndex(max(self.broker_combo.findData(values["BROKER"]), 0))
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
        """The dialog's values by setting name, as typed."""
        values = {name: field.text() for name, field in self.fields.items()}
        values["BROKER"] = self.broker_combo.currentData()
        values["SIMULATOR_BROKER"] = self.simulated_combo.currentData()
        return values

    def save(self) -> bool:
        """Check and save; on a bad value name it, focus its field and stay open."""
        try:
            settings = validate(self.values())
        except SettingsError as exc:
            self._show_error(str(exc))
            field = self.fields.get(exc.name)
            if field is not None:
                field.setFocus()
                field.selectAll()
            return False
        try:
            values = file_values(settings, list(self.values()))
            write_settings(values, self.path, merge=self._file_readable)
        except OSError as exc:
            self._show_error(f"Could not save {self.path}: {exc.strerror or exc}")
            return False
        self.error_label.hide()
        self.applied.emit(settings)
        self.accept()
        return True

    def _show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()

    def _enable_broker_fields(self) -> None:
        chosen = self.broker_combo.currentData()
        self.simulated_combo.setEnabled(chosen == SIMULATOR)
        for name, group in self.broker_groups.items():
            group.setVisible(name == chosen)
        broker = BROKERS[self.simulated_combo.currentData() if chosen == SIMULATOR else chosen]
        limits = {
            "MAX_SYMBOLS_PER_WEBSOCKET": broker.max_symbols,
            "MAX_WEBSOCKET_CONNECTIONS": broker.max_connections,
        }
        for name, limit in limits.items():
            self.fields[name].setPlaceholderText(f"{limit:,} ({broker.label}'s limit)")
