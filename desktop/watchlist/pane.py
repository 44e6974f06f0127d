"""The watchlist pane: the symbol entry line and the filter box, the summary of the last import,
and the table.

While the watchlist is empty, a :class:`~desktop.watchlist.first_run.FirstRunHint` over the
table says how to fill it.

Every way of adding symbols (typing, pasting, dropping text or files, File > Import) goes through
:meth:`WatchlistPane.import_parsed`: check against the watchlist and the instrument master, add
what is new and known, give rows held in another mode the mode asked for, then show and emit an
:class:`ImportSummary`. A mode change from the table's menu is summarised the same way. Rows
added or changed are selected and scrolled to. The summary then follows the rows' statuses until
the backend has answered for each (or :data:`SETTLE_MS` has passed), and is logged in one line.

The pane follows the pool through :meth:`WatchlistPane.handle_bus_message` (``SYS.POOL``,
``SYS.HEALTH``, ``SYS.MOVES``): rows waiting for room are asked for again as room frees
(:mod:`desktop.watchlist.room`), rows whose prices are not live are marked stale
(:mod:`desktop.watchlist.staleness`), and rows moved between broker accounts say where they are.
The Account column shows while the pool has several accounts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from msgspec import Struct
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

from backend.bus.messages import BackendHealth, ConnectionHealth, PoolStats, SymbolsMoved
from backend.instruments.master import InstrumentMaster
from backend.instruments.symbol_lists import ParseResult, WatchEntry, parse_file, parse_text
from desktop.colours import SUMMARY_COLOURS
from desktop.tables.columns import column_index
from desktop.watchlist.columns import WATCHLIST_COLUMNS
from desktop.watchlist.first_run import FirstRunHint
from desktop.watchlist.importing import SEVERITY_ORDER, ImportSummary, plan_import
from desktop.watchlist.model import WatchlistModel
from desktop.watchlist.room import RoomWatch
from desktop.watchlist.staleness import StaleWatch
from desktop.watchlist.symbol_entry import SymbolEntry
from desktop.watchlist.view import WatchlistView

log = logging.getLogger("feedpool.desktop.watchlist")

ACCOUNT_COLUMN = column_index(WATCHLIST_COLUMNS, "account")

#: A summary whose rows the backend has not all answered for by then is logged as it stands.
SETTLE_MS = 10_000
#: Summaries awaiting the backend are recounted at most this often (a list of alternating modes
#: is thousands of requests, each answered on its own).
RECOUNT_MS = 100
LOG_LEVELS = {"ok": logging.INFO, "warning": logging.WARNING, "error": logging.WARNING}


class WatchlistPane(QWidget):
    """Adds symbols to a :class:`WatchlistModel`, says how each import went, and keeps the rows
    served in their order and marked when stale."""

    #: Emitted after every import with its :class:`ImportSummary` (the backend's answers follow).
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
        self.room = RoomWatch()
        self.staleness = StaleWatch(model)
        self.entry = SymbolEntry(master, self)
        self.view = WatchlistView(model, self)
        self.view.setColumnHidden(ACCOUNT_COLUMN, True)  # until the pool has several accounts
        self.first_run_hint = FirstRunHint(self.view.viewport())
        self.summary_label = QLabel(self)
        self.summary_label.setWordWrap(True)
        self.summary_label.hide()
        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText("Filter: symbol, mode or status")
        self.filter_edit.setToolTip(
            "Show the rows whose EXCHANGE:SYMBOL, mode or status contains this text"
        )
        self.filter_edit.setClearButtonEnabled(True)
        self.shown_label = QLabel(self)
        #: The summaries shown, and those whose rows the backend has not all answered for.
        self._shown: list[ImportSummary] = []
        self._unsettled: list[ImportSummary] = []
        self._recount = QTimer(self)
        self._recount.setSingleShot(True)
        self._recount.setInterval(RECOUNT_MS)
        self._recount.timeout.connect(self._count_answers)

        # Adding and filtering share a line: the table keeps the height of a screen's rows.
        top_line = QHBoxLayout()
        top_line.addWidget(self.entry, 3)
        top_line.addWidget(self.filter_edit, 2)
        top_line.addWidget(self.shown_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top_line)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.view, 1)

        self.entry.entered.connect(self.import_typed)
        self.view.text_received.connect(self.import_pasted)
        self.view.files_dropped.connect(self.import_files)
        self.view.modes_requested.connect(self.change_modes)
        self.first_run_hint.chosen.connect(lambda path: self.import_files([path]))
        self.filter_edit.textChanged.connect(self._filter)
        model.answered.connect(self._answered)
        # Answers not counted yet are counted before their rows go.
        model.rowsAboutToBeRemoved.connect(self._count_waiting_answers)
        for change in (model.rowsInserted, model.rowsRemoved, model.modelReset):
            change.connect(self._show_hint)
            change.connect(self._count_shown)
        self._show_hint()
        self._count_shown()

    def _show_hint(self) -> None:
        self.first_run_hint.setVisible(self.model.rowCount() == 0)

    def _filter(self, text: str) -> None:
        self.view.proxy.set_text(text)
        self._count_shown()

    def _count_shown(self) -> None:
        """Say how many rows the filter shows, while there is a filter."""
        total, shown = self.model.rowCount(), self.view.proxy.rowCount()
        self.shown_label.setText(f"{shown:,} of {total:,} shown")
        self.shown_label.setVisible(bool(self.view.proxy.text))

    def set_master(self, master: InstrumentMaster | None) -> None:
        """Check imports against ``master`` and complete typed symbols from it."""
        self.master = master
        if master is not None:
            self.entry.set_master(master)

    # The pool, from the bus.

    def handle_bus_message(self, topic: str, message: Struct) -> None:
        """Follow the pool: at each ``SYS.POOL`` ask again for the first rows waiting for room,
        as many as have room now, and mark the stale rows; a ``SYS.HEALTH`` marks them at once.
        Other messages are not the watchlist's."""
        if isinstance(message, PoolStats):
            self.model.retry_waiting(self.room.room(message))
            self.staleness.pool(message)
            self.view.setColumnHidden(ACCOUNT_COLUMN, len(message.accounts) < 2)
            self.model.accounts_serving({a.name for a in message.accounts if a.serving})
        elif isinstance(message, BackendHealth | ConnectionHealth):
            self.staleness.health(message)
        elif isinstance(message, SymbolsMoved):
            self.model.apply_moves(message)

    def set_backend_state(self, state: str, detail: str = "") -> None:
        """The app's own backend's state (``detail`` is the status bar's)."""
        self.staleness.backend_state(state)

    # Imports.

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

    def change_modes(self, entries: list[WatchEntry]) -> ImportSummary:
        """Give the rows of ``entries`` the entries' modes (from the table's menu)."""
        summary = ImportSummary(source="selected rows", mode_changed=list(entries))
        self.model.change_modes(entries)
        self._follow(summary)
        self.show_summaries([summary])
        return summary

    def _import(self, parsed: ParseResult, source: str) -> ImportSummary:
        summary = plan_import(parsed, self.model.modes(), self.master, source)
        self.model.add_entries(summary.added)
        self.model.change_modes(summary.mode_changed)
        self._follow(summary)
        self.import_finished.emit(summary)
        return summary

    def _follow(self, summary: ImportSummary) -> None:
        """Count the backend's answers for the summary's rows from now on, show its rows, and
        log it once answered (or after :data:`SETTLE_MS`)."""
        keys = [entry.key for entry in summary.changed]
        self._count(summary)
        if keys:
            if self.filter_edit.text() and not self.view.shows(keys):
                self.filter_edit.clear()
            self.view.reveal(keys)
        if summary.settled:
            self._log(summary)
            return
        self._unsettled.append(summary)
        QTimer.singleShot(SETTLE_MS, self, lambda: self._settle(summary))

    def _answered(self, refused_for_capacity: int) -> None:
        """A subscribe reply was applied: recount the summaries still awaiting the backend
        soon."""
        if refused_for_capacity:
            self.room.refused()
        if self._unsettled and not self._recount.isActive():
            self._recount.start()

    def _count_waiting_answers(self) -> None:
        if self._recount.isActive():
            self._recount.stop()
            self._count_answers()

    def _count_answers(self) -> None:
        for summary in list(self._unsettled):
            self._count(summary)
            if summary.settled:
                self._settle(summary)
        self.show_summaries(self._shown)

    def _count(self, summary: ImportSummary) -> None:
        summary.count_answers(self.model.statuses(entry.key for entry in summary.changed))

    def _settle(self, summary: ImportSummary) -> None:
        """Stop following ``summary``, and show and log it as it stands."""
        if summary in self._unsettled:
            self._unsettled.remove(summary)
            self._count(summary)
            self._log(summary)
            self.show_summaries(self._shown)

    @staticmethod
    def _log(summary: ImportSummary) -> None:
        log.log(LOG_LEVELS[summary.severity], "Watchlist: %s", summary.text())

    def show_summaries(self, summaries: list[ImportSummary]) -> None:
        """Show the summaries, marked with the colour of the worst of them."""
        if not summaries:
            return
        self._shown = summaries
        self.summary_label.setText("\n".join(summary.text() for summary in summaries))
        self.summary_label.setToolTip("\n".join(filter(None, (s.details() for s in summaries))))
        worst = max((summary.severity for summary in summaries), key=SEVERITY_ORDER.index)
        self.summary_label.setStyleSheet(
            f"QLabel {{ border-left: 4px solid {SUMMARY_COLOURS[worst]}; padding: 2px 6px; }}"
        )
        self.summary_label.show()
