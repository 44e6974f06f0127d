"""One broker account's part of the gauges panel: a heading over its connections' gauges.

The heading names the account and its broker, says whether it serves (and why not) and how many
symbols it carries for other accounts and they for it, in the colour of its state; its tooltip
adds the symbols moved off it and back. A **Log in again** button shows beside it while the
broker has ended the account's session.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from backend.bus.messages import AccountStats
from backend.logs.wording import counted
from desktop.gauges.readings import account_heading, account_needs_login


class AccountGroup(QFrame):
    """The gauges of the account named :attr:`name`, under its heading."""

    #: The trader asked to log in to this account again: its name.
    log_in_requested = Signal(str)

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.heading = QLabel(self)
        self.log_in_button = QPushButton("Log in again", self)
        self.log_in_button.setToolTip(f"The broker ended {name}'s session: log in to it again")
        self.log_in_button.clicked.connect(lambda: self.log_in_requested.emit(self.name))
        self.log_in_button.hide()
        top = QHBoxLayout()
        top.addWidget(self.heading, 1)
        top.addWidget(self.log_in_button)
        #: The row of the account's connection gauges, in index order.
        self.row = QHBoxLayout()
        self.row.setContentsMargins(0, 0, 0, 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(0)
        layout.addLayout(top)
        layout.addLayout(self.row, 1)

    def show_account(self, account: AccountStats) -> None:
        """Show the account's latest statistics in the heading."""
        text, colour = account_heading(account)
        self.heading.setText(text)
        self.heading.setStyleSheet(f"color: {colour}; font-weight: bold")
        moves = (
            f"{counted(account.failed_over, 'symbol')} moved off it, "
            f"{account.returned:,} back, {account.displaced:,} given back for its own"
        )
        problem = f"\n{account.session_problem}" if account.session_problem else ""
        self.heading.setToolTip(
            f"{text}\n{account.symbols:,} of {account.capacity:,} symbols{problem}\n{moves}"
        )
        self.log_in_button.setVisible(account_needs_login(account))
