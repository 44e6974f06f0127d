"""Adding symbols by dropping files or text, pasting and typing; removing them; summaries."""

from __future__ import annotations

import pytest
from drops import drop, drop_files
from frames import frame
from PySide6.QtCore import QMimeData, Qt
from PySide6.QtGui import QGuiApplication

from backend.instruments.symbol_lists import WatchEntry
from desktop.tables.columns import column_index
from desktop.watchlist.columns import WATCHLIST_COLUMNS
from desktop.watchlist.model import WatchlistModel
from desktop.watchlist.pane import WatchlistPane


@pytest.fixture
def pane(qtbot, small_master) -> WatchlistPane:
    pane = WatchlistPane(WatchlistModel(flush_interval_ms=10_000), small_master)
    qtbot.addWidget(pane)
    pane.resize(900, 500)
    pane.show()
    qtbot.waitExposed(pane)
    return pane


def symbols(pane: WatchlistPane) -> list[str]:
    return [entry.label for entry in pane.model.entries()]


def test_drop_csv_file(qtbot, pane, tmp_path):
    path = tmp_path / "sample.csv"
    path.write_text("Symbol,Exchange,Mode\nSBIN,NSE,LTP\nTCS,NSE,Quote\n", encoding="utf-8")
    with qtbot.waitSignal(pane.model.symbols_added) as added:
        event = drop_files(pane, path)
    assert event.isAccepted()
    assert added.args[0] == [WatchEntry("SBIN", "NSE", 1), WatchEntry("TCS", "NSE", 2)]
    assert pane.summary_label.isVisible()
    assert pane.summary_label.text() == "sample.csv: added 2; awaiting the backend 2."


def test_drop_txt_file_with_both_line_forms(pane, tmp_path):
    path = tmp_path / "nifty.txt"
    path.write_text("NSE:INFY\nRELIANCE,NSE\nNSE_INDEX:NIFTY\n", encoding="utf-8")
    drop_files(pane, path)
    assert symbols(pane) == ["NSE:INFY", "NSE:RELIANCE", "NSE_INDEX:NIFTY"]


def test_drop_several_files_summarises_each(pane, tmp_path):
    first = tmp_path / "a.txt"
    first.write_text("NSE:SBIN\n", encoding="utf-8")
    second = tmp_path / "b.txt"
    second.write_text("NSE:SBIN\nNSE:TCS\n", encoding="utf-8")
    drop_files(pane, first, second)
    assert symbols(pane) == ["NSE:SBIN", "NSE:TCS"]
    assert pane.summary_label.text() == (
        "a.txt: added 1; awaiting the backend 1.\n"
        "b.txt: added 1; awaiting the backend 1; duplicates skipped 1."
    )


def test_drop_text(pane):
    mime = QMimeData()
    mime.setText("NSE:TCS\nBSE:SBIN\n")
    drop(pane, mime)
    assert symbols(pane) == ["NSE:TCS", "BSE:SBIN"]


@pytest.mark.parametrize(
    "case",
    [
        ("empty.txt", b"", "empty.txt is empty. The watchlist is unchanged."),
        (
            "image.csv",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
            "image.csv is not a text file (it holds binary data). The watchlist is unchanged.",
        ),
        (
            "notes.txt",
            b"Dear diary,\nthe market was up today: good!\n",
            "notes.txt: no symbols found; lines not understood 2 (line 1: 'Dear diary,', line 2:"
            " 'the market was up today: good!'). The watchlist is unchanged.",
        ),
        (
            "unknown.txt",
            b"NSE:NOSUCH\nBSE:NOTHING\n",
            "unknown.txt: added 0; unknown symbols 2 (NSE:NOSUCH, BSE:NOTHING)."
            " The watchlist is unchanged.",
        ),
    ],
)
def test_bad_files_leave_the_watchlist_unchanged_and_say_why(qtbot, pane, tmp_path, case):
    name, content, message = case
    pane.import_pasted("NSE:SBIN")
    path = tmp_path / name
    path.write_bytes(content)
    changes = []
    pane.model.symbols_added.connect(changes.append)
    with qtbot.waitSignal(pane.import_finished) as finished:
        drop_files(pane, path)
    assert changes == []
    assert symbols(pane) == ["NSE:SBIN"]
    assert finished.args[0].severity == "error"
    assert pane.summary_label.text() == message


def test_unknown_symbols_are_listed_and_known_ones_added(pane, tmp_path):
    path = tmp_path / "mixed.txt"
    path.write_text("NSE:SBIN\nNSE:NOSUCH\n", encoding="utf-8")
    drop_files(pane, path)
    assert symbols(pane) == ["NSE:SBIN"]
    assert "unknown symbols 1 (NSE:NOSUCH)" in pane.summary_label.text()
    assert "NSE:NOSUCH" in pane.summary_label.toolTip()


def test_duplicates_are_skipped(pane):
    pane.import_pasted("NSE:SBIN\nNSE:TCS")
    summary = pane.import_pasted("NSE:TCS\nTCS,NSE,LTP\nNSE:INFY")
    assert summary.duplicates == 2
    assert symbols(pane) == ["NSE:SBIN", "NSE:TCS", "NSE:INFY"]
    assert pane.summary_label.text() == (
        "pasted text: added 1; awaiting the backend 1; duplicates skipped 2."
    )


def test_ctrl_v_pastes_lines_using_the_chosen_exchange(qtbot, pane):
    QGuiApplication.clipboard().setText("SBIN\nTCS\n")
    pane.entry.exchange_combo.setCurrentText("BSE")
    pane.view.setFocus()
    qtbot.waitUntil(pane.view.hasFocus)
    qtbot.keyClick(pane.view, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert symbols(pane) == ["BSE:SBIN"]
    assert "unknown symbols 1 (BSE:TCS)" in pane.summary_label.text()


def test_typing_with_completion(qtbot, pane):
    line_edit = pane.entry.line_edit
    line_edit.setFocus()
    qtbot.keyClicks(line_edit, "sbi")
    popup = pane.entry.completer.popup()
    qtbot.waitUntil(popup.isVisible)
    offered = [popup.model().index(row, 0).data() for row in range(popup.model().rowCount())]
    assert offered == ["NSE:SBIN", "BSE:SBIN"]  # the exchange chosen (NSE) first

    qtbot.keyClick(popup, Qt.Key.Key_Down)
    qtbot.keyClick(popup, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: symbols(pane) == ["NSE:SBIN"])
    assert line_edit.text() == ""
    # Submitted once.
    assert pane.summary_label.text() == "typed symbol: added 1; awaiting the backend 1."

    qtbot.keyClicks(line_edit, "NSE:TC")
    qtbot.waitUntil(popup.isVisible)
    qtbot.keyClicks(line_edit, "S")
    qtbot.keyClick(line_edit, Qt.Key.Key_Return)  # nothing highlighted: what was typed
    assert symbols(pane) == ["NSE:SBIN", "NSE:TCS"]
    assert line_edit.text() == ""


def test_typing_a_bare_symbol_uses_the_exchange_and_mode_chosen(qtbot, pane):
    pane.entry.mode_combo.setCurrentText("Depth")
    qtbot.keyClicks(pane.entry.line_edit, "infy")
    qtbot.mouseClick(pane.entry.add_button, Qt.MouseButton.LeftButton)
    assert pane.model.entries() == [WatchEntry("INFY", "NSE", 3)]


def select_rows(pane: WatchlistPane, *rows: int) -> None:
    """Select these table rows, and only these."""
    selection = pane.view.selectionModel()
    selection.clearSelection()
    for row in rows:
        selection.select(
            pane.view.model().index(row, 0),
            selection.SelectionFlag.Select | selection.SelectionFlag.Rows,
        )


def test_delete_key_removes_the_selected_rows(qtbot, pane):
    pane.import_pasted("NSE:SBIN\nNSE:TCS\nNSE:INFY\nNSE:RELIANCE")
    select_rows(pane, 1, 3)
    pane.view.setFocus()
    qtbot.waitUntil(pane.view.hasFocus)
    with qtbot.waitSignal(pane.model.symbols_removed) as removed:
        qtbot.keyClick(pane.view, Qt.Key.Key_Delete)
    assert removed.args[0] == [WatchEntry("TCS", "NSE"), WatchEntry("RELIANCE", "NSE")]
    assert symbols(pane) == ["NSE:SBIN", "NSE:INFY"]


def test_remove_from_the_context_menu_in_sorted_view(pane):
    pane.import_pasted("NSE:SBIN\nNSE:TCS\nNSE:INFY")
    pane.view.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # INFY, SBIN, TCS
    select_rows(pane, 0, 1)
    menu = pane.view.context_menu()
    assert pane.view.remove_action in menu.actions()
    assert pane.view.remove_action.text() == "Remove 2 selected"
    pane.view.remove_action.trigger()
    assert symbols(pane) == ["NSE:TCS"]
    menu.deleteLater()


def test_remove_is_disabled_without_a_selection(pane):
    pane.import_pasted("NSE:SBIN")
    pane.view.clearSelection()
    menu = pane.view.context_menu()
    assert not pane.view.remove_action.isEnabled()
    menu.deleteLater()


def test_sorted_rows_keep_their_places_while_prices_tick(pane):
    pane.import_pasted("NSE:SBIN\nNSE:TCS\nNSE:INFY")
    ltp = column_index(WATCHLIST_COLUMNS, "ltp")

    def tick(symbol: str, price: float) -> None:
        data = {"symbol": symbol, "exchange": "NSE", "ltp": price}
        pane.model.push_tick({"type": "market_data", **data, "data": data})

    def shown() -> list[str]:
        proxy = pane.view.model()
        return [proxy.index(row, 0).data() for row in range(proxy.rowCount())]

    for symbol, price in (("SBIN", 800.0), ("TCS", 4000.0), ("INFY", 1500.0)):
        tick(symbol, price)
    pane.model.flush()
    pane.view.sortByColumn(ltp, Qt.SortOrder.AscendingOrder)
    assert shown() == ["SBIN", "INFY", "TCS"]
    tick("SBIN", 5000.0)
    pane.model.flush()
    assert shown() == ["SBIN", "INFY", "TCS"]
    pane.view.sortByColumn(ltp, Qt.SortOrder.AscendingOrder)  # sorted again
    assert shown() == ["INFY", "TCS", "SBIN"]


def test_only_rows_in_view_are_read_and_the_others_show_their_newest_when_sorted(qtbot, pane):
    entries = [WatchEntry(f"SYM{n:03}", "NSE") for n in range(300)]
    pane.model.add_entries(entries)
    read: set[str] = set()
    pane.model.observe_tick = lambda data, received: read.add(data["symbol"])
    for n, entry in enumerate(entries):
        pane.model.push_frame(frame(entry.symbol, 1.0))
        pane.model.push_frame(frame(entry.symbol, 1000.0 - n))  # the newest: falling prices
    pane.model.flush()
    qtbot.waitUntil(lambda: "SYM000" in read)  # painted
    assert "SYM299" not in read
    ltp = column_index(WATCHLIST_COLUMNS, "ltp")
    pane.view.sortByColumn(ltp, Qt.SortOrder.AscendingOrder)
    proxy = pane.view.model()
    assert [proxy.index(row, 0).data() for row in (0, 299)] == ["SYM299", "SYM000"]
    pane.view.scrollToBottom()
    qtbot.waitUntil(lambda: pane.view.rowAt(pane.view.viewport().height() - 1) == 299)
    assert proxy.index(299, ltp).data() == "1,000.00"
