"""The settings dialogs' text fields: a titled group of labelled line edits, one per setting.

A field is named after its setting (its object name), wide enough for a broker's URLs, and a
password field where the setting is a secret.
"""

from __future__ import annotations

from PySide6.QtWidgets import QFormLayout, QGroupBox, QLineEdit, QWidget

from backend.brokers import Broker
from backend.runtime.settings import SECRET_SETTINGS

#: A field's width, in average characters: a broker's URLs and the limits' hints in full.
FIELD_CHARACTERS = 48


def field_group(
    title: str, labels: dict[str, str], parent: QWidget
) -> tuple[QGroupBox, dict[str, QLineEdit]]:
    """A group titled ``title`` of a field per setting of ``labels`` (name: label); the group
    and its fields by setting name."""
    group = QGroupBox(title, parent)
    form = QFormLayout(group)
    fields: dict[str, QLineEdit] = {}
    for name, label in labels.items():
        field = QLineEdit(group)
        field.setObjectName(name)
        field.setMinimumWidth(field.fontMetrics().averageCharWidth() * FIELD_CHARACTERS)
        if name in SECRET_SETTINGS:
            field.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow(label, field)
        fields[name] = field
    return group, fields


def show_limits(fields: dict[str, QLineEdit], broker: Broker) -> None:
    """Hint ``broker``'s own limits in the limit fields, shown while they are empty."""
    limits = {
        "MAX_SYMBOLS_PER_WEBSOCKET": broker.max_symbols,
        "MAX_WEBSOCKET_CONNECTIONS": broker.max_connections,
    }
    for name, limit in limits.items():
        fields[name].setPlaceholderText(f"{limit:,} ({broker.label}'s limit)")
