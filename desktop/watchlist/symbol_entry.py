"""Typing symbols: a line edit completing from the instrument master, an exchange and a mode.

Type ``EXCHANGE:SYMBOL`` (the completer offers those containing what is typed: the exchange
chosen beside it first, shorter symbols first, so ``SBI`` offers ``NSE:SBIN`` before
``NSE:SBICARD`` and ``BSE:SBIN`` while NSE is chosen), or a bare ``SYMBOL`` for that exchange.
Enter, the Add button or picking a completion hands the text on with that exchange and mode. A
symbol the watchlist holds in another mode is given the mode chosen (see
:mod:`desktop.watchlist.importing`).
"""

from __future__ import annotations

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtWidgets import QComboBox, QCompleter, QHBoxLayout, QLineEdit, QPushButton, QWidget

from backend.instruments.master import EXCHANGES, InstrumentMaster
from backend.instruments.symbol_lists import DEFAULT_MODE, MODE_NAMES

MAX_VISIBLE_COMPLETIONS = 12


class SymbolEntry(QWidget):
    """Emits :attr:`entered` with the typed text, the chosen exchange and mode."""

    #: text, default exchange (for a bare symbol), mode number
    entered = Signal(str, str, int)

    def __init__(self, master: InstrumentMaster | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.line_edit = QLineEdit(self)
        self.line_edit.setPlaceholderText("Add symbol or change its mode: NSE:SBIN or SBIN")
        self.line_edit.setClearButtonEnabled(True)
        self.exchange_combo = QComboBox(self)
        self.exchange_combo.addItems(EXCHANGES)
        self.exchange_combo.setToolTip("Exchange of a symbol typed without one")
        self.mode_combo = QComboBox(self)
        for mode, name in MODE_NAMES.items():
            self.mode_combo.addItem(name, mode)
        self.mode_combo.setCurrentIndex(self.mode_combo.findData(DEFAULT_MODE))
        self.add_button = QPushButton("Add", self)

        self.completer = QCompleter(self)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.completer.setMaxVisibleItems(MAX_VISIBLE_COMPLETIONS)
        self._names = QStringListModel(self)
        self._master_names: list[tuple[int, str, str]] = []  # symbol length, name, exchange
        self.completer.setModel(self._names)
        self.line_edit.setCompleter(self.completer)
        if master is not None:
            self.set_master(master)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.line_edit, 1)
        layout.addWidget(self.exchange_combo)
        layout.addWidget(self.mode_combo)
        layout.addWidget(self.add_button)

        self.line_edit.returnPressed.connect(self._on_return)
        # Queued: the line edit connects its own setText to ``activated`` when it gets focus,
        # after this connection, so a direct call would read the text before the completion.
        self.completer.activated[str].connect(self.submit, Qt.ConnectionType.QueuedConnection)
        self.add_button.clicked.connect(self.submit)
        self.exchange_combo.currentTextChanged.connect(self._order_names)

    def set_master(self, master: InstrumentMaster) -> None:
        """Complete from this master's ``EXCHANGE:SYMBOL`` names."""
        self._master_names = sorted(
            (len(i.symbol), f"{i.exchange}:{i.symbol}", i.exchange) for i in master
        )
        self._order_names(self.exchange_combo.currentText())

    def _order_names(self, exchange: str) -> None:
        """The chosen exchange's names first, then the others', each shorter symbols first."""
        chosen = [name for _, name, other in self._master_names if other == exchange]
        others = [name for _, name, other in self._master_names if other != exchange]
        self._names.setStringList(chosen + others)

    def _on_return(self) -> None:
        # With a completion highlighted, Return goes on to the completer, which fills in the
        # completion and then activates it; submitting now would submit twice.
        popup = self.completer.popup()
        if not (popup.isVisible() and popup.currentIndex().isValid()):
            self.submit()

    def submit(self) -> None:
        text = self.line_edit.text().strip()
        if text:
            self.entered.emit(
                text, self.exchange_combo.currentText(), self.mode_combo.currentData()
            )
            self.line_edit.clear()
