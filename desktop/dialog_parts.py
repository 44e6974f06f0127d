"""Pieces every FeedPool dialog shares: the inline error line and the Save / Cancel buttons."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QDialogButtonBox, QLabel, QWidget

from desktop.colours import SUMMARY_COLOURS


def error_label(parent: QWidget) -> QLabel:
    """A hidden, wrapping label in the error colour, shown when the dialog has something to say."""
    label = QLabel(parent)
    label.setWordWrap(True)
    label.setStyleSheet(f"color: {SUMMARY_COLOURS['error']}")
    label.hide()
    return label


def save_cancel_buttons(
    parent: QWidget, on_save: Callable[[], object], on_cancel: Callable[[], object]
) -> QDialogButtonBox:
    buttons = QDialogButtonBox(
        QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, parent
    )
    buttons.accepted.connect(on_save)
    buttons.rejected.connect(on_cancel)
    return buttons
