"""The "Export logs" dialog: which records (all or the current view), which format, which file.

It proposes a file stamped with the time of opening in the folder exported to last
(:func:`desktop.preferences.export_folder`: one that exists, on a fresh account too). A file name
typed or chosen with a known extension (``.log``, ``.csv``, ``.jsonl``) decides the format; any
other name gets the chosen format's extension. An error is said under the fields, the dialog
growing to show it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from desktop.dialog_parts import error_label, save_cancel_buttons
from desktop.logs.entry import LogEntry
from desktop.logs.export import (
    EXPORT_FORMATS,
    default_export_name,
    format_of,
    write_log_export,
)
from desktop.logs.filter import LogFilterProxy
from desktop.preferences import export_folder, remember_export_folder

PATH_CHARACTERS = 60  # the file field's width, in average characters


class LogExportDialog(QDialog):
    """Writes the chosen records with :func:`write_log_export`; open it with ``open()``.

    ``folder`` is where the first opening proposes a file, instead of the remembered folder.
    """

    #: Emitted after a successful export: the file and how many records it holds.
    exported = Signal(Path, int)

    def __init__(
        self,
        proxy: LogFilterProxy,
        folder: Path | None = None,
        clock: Callable[[], datetime] = datetime.now,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export logs")
        self._proxy = proxy

        self.all_button = QRadioButton(self)
        self.view_button = QRadioButton(self)
        self.all_button.setChecked(True)
        scope = QButtonGroup(self)
        scope.addButton(self.all_button)
        scope.addButton(self.view_button)

        self.format_combo = QComboBox(self)
        for fmt, label in EXPORT_FORMATS.items():
            self.format_combo.addItem(label, fmt)
        self.format_combo.currentIndexChanged.connect(self._match_suffix)

        self._clock = clock
        self._folder = folder
        self.path_edit = QLineEdit(self)
        self.path_edit.setMinimumWidth(self.fontMetrics().averageCharWidth() * PATH_CHARACTERS)
        browse = QPushButton("Browse...", self)
        browse.clicked.connect(self.browse)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit, 1)
        path_row.addWidget(browse)

        self.error_label = error_label(self)
        buttons = save_cancel_buttons(self, self.export, self.reject)

        form = QFormLayout()
        form.addRow("Records", self.all_button)
        form.addRow("", self.view_button)
        form.addRow("Format", self.format_combo)
        form.addRow("File", path_row)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        self.refresh_counts()

    def refresh_counts(self) -> None:
        """Label the choices with how many records each would write."""
        total = sum(1 for _ in self._proxy.log_model().entries())
        shown = sum(1 for _ in self._proxy.visible_entries())
        self.all_button.setText(f"All records ({total:,})")
        self.view_button.setText(f"Only the current view ({shown:,})")

    def open(self) -> None:
        """Show the dialog with a file name stamped with the time of opening, in the folder
        used last."""
        name = default_export_name(self._clock(), self.format_combo.currentData())
        self.path_edit.setText(str((self._folder or export_folder()) / name))
        self.refresh_counts()
        self.error_label.hide()
        super().open()

    def selected_entries(self) -> Iterable[LogEntry]:
        if self.view_button.isChecked():
            return self._proxy.visible_entries()
        return self._proxy.log_model().entries()

    def browse(self) -> None:
        fmt = self.format_combo.currentData()
        chosen, _ = QFileDialog.getSaveFileName(
            self, "Export logs", self.path_edit.text(), EXPORT_FORMATS[fmt]
        )
        if chosen:
            self.path_edit.setText(str(self._follow_extension(Path(chosen))))

    def export(self) -> None:
        """Write the file; on failure say why and stay open."""
        path = Path(self.path_edit.text().strip()).expanduser()
        if not path.name:
            self._fail("Choose a file to write.")
            return
        path = self._follow_extension(path)
        try:
            count = write_log_export(self.selected_entries(), path, self.format_combo.currentData())
        except OSError as exc:
            self._fail(f"Could not write {path}: {exc.strerror or exc}")
            return
        self._folder = None  # the next opening starts where this export went
        remember_export_folder(path.parent)
        self.exported.emit(path, count)
        self.accept()

    def _follow_extension(self, path: Path) -> Path:
        """Choose the format ``path``'s extension names; a name without a known extension gets
        the chosen format's."""
        try:
            fmt = format_of(path)
        except ValueError:
            return path.with_suffix("." + self.format_combo.currentData())
        self.format_combo.setCurrentIndex(self.format_combo.findData(fmt))
        return path

    def _match_suffix(self) -> None:
        text = self.path_edit.text().strip()
        if text:
            path = Path(text)
            self.path_edit.setText(str(path.with_suffix("." + self.format_combo.currentData())))

    def _fail(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.show()
        # Grow to show the message rather than squeeze the fields above it.
        self.layout().activate()
        hint = self.sizeHint()
        self.resize(max(self.width(), hint.width()), max(self.height(), hint.height()))
