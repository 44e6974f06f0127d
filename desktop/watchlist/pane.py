"""The watchlist pane: the symbol entry line, the table and the summary of the last import.

While the watchlist is empty, a :class:`~desktop.watchlist.first_run.FirstRunHint` over the
table says how to fill it.

Every way of adding symbols (typing, pasting, dropping text or files, File > Import) goes through
:meth:`WatchlistPane.import_parsed`: check against the watchlist and the instrument master, add
what is new and known, then show and emit an :class:`ImportSummary`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from backend.instruments.master import InstrumentMaster
from backend.instruments.symbol_lists import ParseResult, parse_file, parse_text
from desktop.colours import SUMMARY_COLOURS
from desktop.watchlist.first_run import FirstRunHint
from desktop.watchlist.importing import SEVERITY_ORDER, ImportSummary, plan_import
from desktop.watchlist.model import WatchlistModel
from desktop.watchlist.symbol_entry import SymbolEntry
from desktop.watchlist.view import WatchlistView


class WatchlistPane(QWidget):
    """Adds symbols to a :class:`WatchlistModel` and says how each import went."""

    #: Emitted after every import with its :class:`ImportSummary`.
    import_finished = Signal(object)

    def __init__(
        self,
        model: WatchlistModel,
        master: InstrumentMaster | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.model = model
        self.master = master
        self.entry = SymbolEntry(master, self)
        self.view = WatchlistView(model, self)
        self.first_run_hint = FirstRunHint(self.view.viewport())
        self.summary_label = QLabel(self)
        self.summary_label.setWordWrap(True)
        self.summary_label.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.entry)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.view, 1)

        self.entry.entered.connect(self.import_typed)
        self.view.text_received.connect(self.import_pasted)
        self.view.files_dropped.connect(self.import_files)
        self.first_run_hint.chosen.connect(lambda path: self.import_files([path]))
        for change in (model.rowsInserted, model.rowsRemoved, model.modelReset):
            change.connect(self._show_hint)
        self._show_hint()

    def _show_hint(self) -> None:
        self.first_run_hint.setVisible(self.model.rowCount() == 0)

    def set_master(self, master: InstrumentMaster | None) -> None:
        """Check imports against ``master`` and complete typed symbols from it."""
        self.master = master
        if master is not None:
            self.entry.set_master(master)

    def import_typed(self, text: str, exchange: str, mode: int) -> ImportSummary:
        return self.import_parsed(parse_text(text, exchange, mode), "typed symbol")

    def import_pasted(self, text: str) -> ImportSummary:
        """Text pasted or dropped: bare symbols take the entry line's exchange and mode."""
        parsed = parse_text(
            text,
            self.entry.exchange_combo.currentText(),
            self.entry.mode_combo.currentData(),
        )
        return self.import_parsed(parsed, "pasted text")

    def import_file(self, path: Path) -> ImportSummary:
        return self.import_parsed(parse_file(path), path.name)

    def import_files(self, paths: Iterable[Path]) -> list[ImportSummary]:
        """Import each file in turn and show every file's summary."""
        summaries = [self._import(parse_file(path), path.name) for path in paths]
        self.show_summaries(summaries)
        return summaries

    def import_parsed(self, parsed: ParseResult, source: str) -> ImportSummary:
        summary = self._import(parsed, source)
        self.show_summaries([summary])
        return summary

    def _import(self, parsed: ParseResult, source: str) -> ImportSummary:
        summary = plan_import(parsed, self.model, self.master, source)
        self.model.add_entries(summary.added)
        self.import_finished.emit(summary)
        return summary

    def show_summaries(self, summaries: list[ImportSummary]) -> None:
        """Show the summaries, marked with the colour of the worst of them."""
        if not summaries:
            return
        self.summary_label.setText("\n".join(summary.text() for summary in summaries))
        self.summary_label.setToolTip("\n".join(filter(None, (s.details() for s in summaries))))
        worst = max((summary.severity for summary in summaries), key=SEVERITY_ORDER.index)
        self.summary_label.setStyleSheet(
            f"QLabel {{ border-left: 4px solid {SUMMARY_COLOURS[worst]}; padding: 2px 6px; }}"
        )
        self.summary_label.show()
