"""The alarm banner over the main area: each alarm of an :class:`AlarmBoard` on a line of its own,
in its colour, shown while there is one and gone when everything is back.

When the broker ended the session, a **Log in again** button sits on the banner too (with several
accounts, for the first account whose session ended).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from desktop.alarms.board import SESSION, Alarm


class AlarmBanner(QFrame):
    """Shows a list of alarms; hidden while the list is empty."""

    #: The trader asked to log in to the broker again: the account (empty with one).
    log_in_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("alarm_banner")
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.log_in_button = QPushButton("Log in again", self)
        self.log_in_button.clicked.connect(self._log_in)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.log_in_button)
        self._alarms: list[Alarm] = []
        self.hide()

    @property
    def alarms(self) -> list[Alarm]:
        return list(self._alarms)

    def _log_in(self) -> None:
        """Log in to the account of the first session alarm."""
        self.log_in_requested.emit(
            next((alarm.account for alarm in self._alarms if alarm.kind == SESSION), "")
        )

    def show_alarms(self, alarms: list[Alarm]) -> None:
        """Show ``alarms`` (the worst first), or hide the banner when there are none."""
        if alarms == self._alarms:
            return
        self._alarms = list(alarms)
        if not alarms:
            self.hide()
            return
        self.label.setText(
            "<br>".join(
                f'<span style="color: {alarm.colour}"><b>&#9888;</b></span> {_escaped(alarm.text)}'
                for alarm in alarms
            )
        )
        self.setToolTip("\n".join(alarm.text for alarm in alarms))
        self.log_in_button.setVisible(any(alarm.kind == SESSION for alarm in alarms))
        tint = QColor(alarms[0].colour)
        tint.setAlpha(40)
        self.setStyleSheet(
            f"QFrame#alarm_banner {{ border-left: 5px solid {alarms[0].colour};"
            f" background: rgba({tint.red()}, {tint.green()}, {tint.blue()}, {tint.alpha()}); }}"
        )
        self.show()


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
