"""A first start: the empty watchlist says how to fill it, and a bundled list loads in a click."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from backend.instruments.master import load_master
from backend.runtime.resources import resource_path
from desktop.main_window import MainWindow


@pytest.fixture
def window(qtbot, tmp_path) -> MainWindow:
    window = MainWindow(
        load_master(),
        watchlist_path=tmp_path / "watchlist.json",
        settings_path=tmp_path / "settings.json",
    )
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def test_the_empty_watchlist_shows_the_hint_and_a_bundled_list_loads(qtbot, window):
    hint = window.watchlist_pane.first_run_hint
    assert hint.isVisible()
    assert "drop a .csv or .txt file" in hint.label.text()
    assert "File > Import" in hint.label.text()
    names = [hint.list_combo.itemText(i) for i in range(hint.list_combo.count())]
    assert names == ["fno_2500.csv", "nifty50.txt", "sample.csv"]

    hint.list_combo.setCurrentIndex(names.index("nifty50.txt"))
    with qtbot.waitSignal(window.watchlist_pane.import_finished) as finished:
        qtbot.mouseClick(hint.load_button, Qt.MouseButton.LeftButton)
    assert finished.args[0].severity == "ok"
    assert len(window.watchlist_model.entries()) == 50
    assert not hint.isVisible()

    window.watchlist_model.remove_rows(range(50))
    assert hint.isVisible()


def test_the_import_dialog_opens_in_the_bundled_lists_first_then_where_it_was(
    window, tmp_path, monkeypatch
):
    folders: list[str] = []
    chosen = tmp_path / "mine" / "list.txt"
    chosen.parent.mkdir()
    chosen.write_text("NSE:SBIN\n", encoding="utf-8")

    def choose(parent, caption, folder, filters):
        folders.append(folder)
        return [str(chosen)], ""

    monkeypatch.setattr("desktop.main_window.QFileDialog.getOpenFileNames", choose)
    window.import_action.trigger()
    window.import_action.trigger()
    assert [Path(folder) for folder in folders] == [resource_path("watchlists"), chosen.parent]
