"""What an empty watchlist says: how to fill it, with the bundled lists one click away.

The hint lies over the empty table (a child of its viewport, kept at the viewport's size), so it
takes no room of its own, and what is dropped on it reaches the table underneath.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from backend.runtime.resources import resource_path

HINT = (
    "The watchlist is empty. Type symbols above, drop a .csv or .txt file of symbols on the"
    " table, use File > Import symbols..., or load one of the lists FeedPool comes with:"
)
SYMBOL_LIST_SUFFIXES = (".csv", ".txt")


def bundled_lists_dir() -> Path:
    """The folder of the bundled symbol lists (``resources/watchlists``)."""
    return resource_path("watchlists")


def bundled_lists() -> list[Path]:
    """The bundled symbol lists, by name."""
    return sorted(
        path for path in bundled_lists_dir().iterdir() if path.suffix in SYMBOL_LIST_SUFFIXES
    )


class FirstRunHint(QWidget):
    """Covers ``viewport``; emits :attr:`chosen` with the bundled list picked to load."""

    #: The :class:`~pathlib.Path` of the list to import.
    chosen = Signal(Path)

    def __init__(self, viewport: QWidget) -> None:
        super().__init__(viewport)
        self.label = QLabel(HINT, self)
        self.label.setWordWrap(True)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setMaximumWidth(520)
        # At least as tall as its wrapped lines: left to its height for its width, the layout
        # gave it one line's.
        policy = self.label.sizePolicy().Policy
        self.label.setSizePolicy(policy.Preferred, policy.MinimumExpanding)
        self.list_combo = QComboBox(self)
        for path in bundled_lists():
            self.list_combo.addItem(path.name, path)
        self.load_button = QPushButton("Load list", self)
        self.load_button.clicked.connect(lambda: self.chosen.emit(self.list_combo.currentData()))
        choice = QHBoxLayout()
        choice.addStretch(1)
        choice.addWidget(self.list_combo)
        choice.addWidget(self.load_button)
        choice.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(self.label, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addLayout(choice)
        layout.addStretch(1)
        viewport.installEventFilter(self)
        self.setGeometry(viewport.rect())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize and isinstance(watched, QWidget):
            self.setGeometry(watched.rect())
        return False
