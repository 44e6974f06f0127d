"""Drag and drop onto the watchlist table, as a window system delivers it: enter, then drop."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from desktop.watchlist.pane import WatchlistPane


def drop(pane: WatchlistPane, mime: QMimeData) -> QDropEvent:
    """Drag ``mime`` over the table and drop it."""
    viewport = pane.view.viewport()
    position = viewport.rect().center()
    drag = (
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    try:
        enter = QDragEnterEvent(QPointF(position), *drag)
    except TypeError:  # PySide6 before 6.12 takes a QPoint only
        enter = QDragEnterEvent(position, *drag)
    QApplication.sendEvent(viewport, enter)
    assert enter.isAccepted()
    event = QDropEvent(QPointF(position), *drag)
    QApplication.sendEvent(viewport, event)
    return event


def drop_files(pane: WatchlistPane, *paths: Path) -> QDropEvent:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
    return drop(pane, mime)
