"""The attach dialog (File > Attach to a backend...): a backend to watch, checked, saved, attached.

It collects an :class:`~desktop.link.attachment.Attachment`: the client API's URL, the bus
endpoint, the API key (a password field), how to trust a ``wss://`` API (a certificate
fingerprint to pin, or a CA file) and a CURVE bus's keys (the server's public key and this app's
secret key file). Its combo lists the saved attachments; choosing one shows its fields.

Open it with ``open()``: it is window-modal and does not block the event loop. Saving checks the
fields (:func:`~desktop.link.attachment.make_attachment`): a bad one is named in the dialog, which
stays open with that field selected. A good attachment is saved
(:mod:`desktop.settings.attachments`) and emitted on :attr:`AttachDialog.attach`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.dialog_parts import error_label, save_cancel_buttons
from desktop.link.attachment import LABELS, AttachmentError, make_attachment
from desktop.settings.attachments import (
    default_attachments_path,
    save_attachment,
    saved_names,
    saved_values,
)

GROUPS = {
    "Backend": ("name", "api_url", "bus", "api_key"),
    "Trust a wss:// API by": ("fingerprint", "ca_file"),
    "CURVE bus": ("bus_server_key", "bus_client_key_file"),
}
PLACEHOLDERS = {
    "name": "a name to attach by later",
    "api_url": "wss://HOST:8765 (the backend's ws)",
    "bus": "tcp://HOST:5555 (the backend's zmq)",
    "api_key": "python -m backend --print-api-key on its host",
    "fingerprint": "its tls_fingerprint: 64 hex characters",
    "ca_file": "or a CA certificate (PEM)",
    "bus_server_key": "its bus_public_key (Z85)",
    "bus_client_key_file": "the secret key file of --allow-bus-client",
}
FILE_FIELDS = ("ca_file", "bus_client_key_file")
NEW = "New attachment"


class AttachDialog(QDialog):
    """Edits one attachment; emits :attr:`attach` after saving it."""

    #: The saved :class:`~desktop.link.attachment.Attachment`: attach to it.
    attach = Signal(object)

    def __init__(self, path: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Attach to a backend")
        self.path = path or default_attachments_path()
        self.fields: dict[str, QLineEdit] = {}

        self.saved_combo = QComboBox(self)
        self.saved_combo.currentIndexChanged.connect(self._show_chosen)
        chooser = QFormLayout()
        chooser.addRow("Saved", self.saved_combo)

        self.error_label = error_label(self)
        layout = QVBoxLayout(self)
        layout.addLayout(chooser)
        for title, names in GROUPS.items():
            layout.addWidget(self._group(title, names))
        layout.addWidget(QLabel("The app watches this backend and never starts or stops it.", self))
        layout.addWidget(self.error_label)
        layout.addWidget(save_cancel_buttons(self, self.save, self.reject))
        self.fields["api_key"].setEchoMode(QLineEdit.EchoMode.Password)
        self.load()

    def _group(self, title: str, names: tuple[str, ...]) -> QGroupBox:
        group = QGroupBox(title, self)
        form = QFormLayout(group)
        for name in names:
            field = QLineEdit(group)
            field.setObjectName(name)
            field.setPlaceholderText(PLACEHOLDERS[name])
            self.fields[name] = field
            form.addRow(LABELS[name], self._with_browse(field) if name in FILE_FIELDS else field)
        return group

    def _with_browse(self, field: QLineEdit) -> QWidget:
        row = QWidget(self)
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        browse = QPushButton("Browse...", row)
        browse.clicked.connect(lambda: self._browse(field))
        layout.addWidget(field)
        layout.addWidget(browse)
        return row

    def _browse(self, field: QLineEdit) -> None:
        chosen, _ = QFileDialog.getOpenFileName(self, LABELS[field.objectName()], field.text())
        if chosen:
            field.setText(chosen)

    def load(self, name: str = "") -> None:
        """List the saved attachments and show ``name``'s fields (empty ones for a new one)."""
        self.saved_combo.blockSignals(True)
        self.saved_combo.clear()
        self.saved_combo.addItem(NEW, "")
        for saved in saved_names(self.path):
            self.saved_combo.addItem(saved, saved)
        self.saved_combo.setCurrentIndex(max(self.saved_combo.findData(name), 0))
        self.saved_combo.blockSignals(False)
        self._show_chosen()

    def open(self, name: str = "") -> None:
        self.load(name)
        super().open()

    def _show_chosen(self) -> None:
        name = self.saved_combo.currentData()
        values = saved_values(name, self.path) if name else {}
        for field_name, field in self.fields.items():
            field.setText(values.get(field_name, ""))
        self.error_label.hide()

    def values(self) -> dict[str, str]:
        """The fields as typed, by name."""
        return {name: field.text() for name, field in self.fields.items()}

    def save(self) -> bool:
        """Check, save and attach; on a bad field name it, select it and stay open."""
        try:
            attachment = make_attachment(self.values())
        except AttachmentError as exc:
            self._show_error(str(exc))
            field = self.fields[exc.field]
            field.setFocus()
            field.selectAll()
            return False
        try:
            save_attachment(attachment, self.path)
        except OSError as exc:
            self._show_error(f"Could not save {self.path}: {exc.strerror or exc}")
            return False
        self.error_label.hide()
        self.attach.emit(attachment)
        self.accept()
        return True

    def _show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()
