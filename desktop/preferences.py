"""What the app remembers between runs in ``QSettings``: the window's layout and the folders a
trader last imported from and exported to.

Exports start in the folder exported to last, by either export (logs or watchlist), as long as it
still exists; else in the Documents folder where there is one, else in the home folder, so a
fresh account without ``~/Documents`` still gets a folder it can write to.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

ORGANISATION = "FeedPool"
APPLICATION = "FeedPool"
EXPORT_FOLDER_KEY = "export/folder"


def preferences() -> QSettings:
    """The app's settings store."""
    return QSettings(ORGANISATION, APPLICATION)


def default_export_folder() -> Path:
    """The Documents folder if it exists, else the home folder."""
    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    if documents and Path(documents).is_dir():
        return Path(documents)
    return Path.home()


def export_folder() -> Path:
    """Where the next export starts: the folder exported to last while it exists, else
    :func:`default_export_folder`."""
    saved = preferences().value(EXPORT_FOLDER_KEY)
    if saved and Path(str(saved)).is_dir():
        return Path(str(saved))
    return default_export_folder()


def remember_export_folder(folder: Path) -> None:
    preferences().setValue(EXPORT_FOLDER_KEY, str(folder))
