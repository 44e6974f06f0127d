"""The "Connect a strategy" dialog: the client API's URL and key, and OpenAlgo SDK code to paste.

The key is masked, in its field and in the code, until **Show** is pressed; each copy button puts
the real text on the clipboard. Until the backend serves, the dialog says so instead.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.strategy.access import ApiAccess
from desktop.strategy.snippet import sdk_snippet

INTRO = (
    "Programs written for OpenAlgo's WebSocket API, its Python SDK among them, take FeedPool's"
    " feed with this URL and key."
)
NOT_SERVING = "The backend does not serve yet: its URL and key appear here once it does."
PINNED = (
    "This backend serves TLS with its own certificate: a program must be told to trust it"
    " (README: One backend for many machines)."
)
MASK = "\N{BULLET}" * 12
#: The code's room: every line of it in sight, the key shown.
CODE_LINES, CODE_COLUMNS = 23, 100


class ConnectStrategyDialog(QDialog):
    """Shows the :class:`ApiAccess` last given to :meth:`set_access`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Connect a strategy")
        self.access: ApiAccess | None = None

        intro = QLabel(INTRO, self)
        intro.setWordWrap(True)
        self.status_label = QLabel(NOT_SERVING, self)
        self.status_label.setWordWrap(True)
        self.url_edit = QLineEdit(self)
        self.url_edit.setReadOnly(True)
        self.key_edit = QLineEdit(self)
        self.key_edit.setReadOnly(True)
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.show_key_button = QPushButton("Show", self)
        self.show_key_button.setCheckable(True)
        self.show_key_button.toggled.connect(self._show_key)
        self.copy_url_button = self._copy_button(lambda access: access.url)
        self.copy_key_button = self._copy_button(lambda access: access.key)
        self.code_view = QPlainTextEdit(self)
        self.code_view.setReadOnly(True)
        self.code_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.code_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        metrics = self.code_view.fontMetrics()
        self.code_view.setMinimumSize(
            metrics.horizontalAdvance("x" * CODE_COLUMNS), metrics.lineSpacing() * CODE_LINES
        )
        self.copy_code_button = self._copy_button(
            lambda access: sdk_snippet(access.url, access.key)
        )
        self.copy_code_button.setText("Copy code")
        self.pinned_label = QLabel(PINNED, self)
        self.pinned_label.setWordWrap(True)

        form = QFormLayout()
        form.addRow("API URL", _row(self.url_edit, self.copy_url_button))
        form.addRow("API key", _row(self.key_edit, self.show_key_button, self.copy_key_button))
        code_title = _row(QLabel("OpenAlgo Python SDK:", self), self.copy_code_button)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.status_label)
        layout.addLayout(form)
        layout.addWidget(self.pinned_label)
        layout.addLayout(code_title)
        layout.addWidget(self.code_view, 1)
        layout.addWidget(buttons)
        self._fill()

    def _copy_button(self, text_of: Callable[[ApiAccess], str]) -> QPushButton:
        """A button that copies ``text_of`` the access shown (enabled only while there is one)."""
        button = QPushButton("Copy", self)
        button.clicked.connect(lambda: QGuiApplication.clipboard().setText(text_of(self.access)))
        return button

    def set_access(self, access: ApiAccess | None) -> None:
        """Show ``access`` (``None``: the backend does not serve)."""
        self.access = access
        self._fill()

    def open(self) -> None:
        """Show the dialog with the key masked."""
        self.show_key_button.setChecked(False)
        super().open()

    def _show_key(self, shown: bool) -> None:
        self.key_edit.setEchoMode(
            QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password
        )
        self.show_key_button.setText("Hide" if shown else "Show")
        self._fill()

    def _fill(self) -> None:
        access = self.access
        self.status_label.setVisible(access is None)
        self.pinned_label.setVisible(access is not None and access.pinned)
        for widget in (
            self.copy_url_button,
            self.copy_key_button,
            self.show_key_button,
            self.copy_code_button,
        ):
            widget.setEnabled(access is not None)
        self.url_edit.setText(access.url if access else "")
        self.key_edit.setText(access.key if access else "")
        shown_key = access.key if access and self.show_key_button.isChecked() else MASK
        self.code_view.setPlainText(sdk_snippet(access.url, shown_key) if access else "")


def _row(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(widgets[0], 1)
    for widget in widgets[1:]:
        row.addWidget(widget)
    return row
