"""Exporting logs: every format writes exactly the records asked for, nothing else."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import pytest

from desktop.logs.entry import LogEntry, full_time
from desktop.logs.export import default_export_name, format_of, log_line, write_log_export
from desktop.logs.export_dialog import LogExportDialog
from desktop.logs.filter import LogFilterProxy
from desktop.logs.model import LogModel
from desktop.main_window import MainWindow

RECORDS = [
    LogEntry(1764060000.5, "INFO", "pool", "[POOL] pool created", "feedpool.pool"),
    LogEntry(1764060001.25, "WARNING", "connection 2", "reconnecting", "feedpool.adapter", 2),
    LogEntry(
        1764060002.0, "ERROR", "proxy", "bad frame\nsecond line, with comma", "feedpool.proxy"
    ),
]


@pytest.fixture
def proxy(qtbot) -> LogFilterProxy:
    model = LogModel(flush_interval_ms=10_000)
    for record in RECORDS:
        model.append(record)
    model.flush()
    return LogFilterProxy(model)


def test_default_name_is_timestamped():
    now = datetime(2026, 11, 25, 15, 30, 0)
    assert default_export_name(now, "log") == "feedpool-logs-20261125-153000.log"
    assert default_export_name(now, "jsonl") == "feedpool-logs-20261125-153000.jsonl"


def test_log_format_one_line_per_record(tmp_path):
    path = tmp_path / "out.log"
    assert write_log_export(RECORDS, path) == 3
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    assert lines[0] == f"{full_time(RECORDS[0].time)} INFO     [pool] [POOL] pool created"
    assert lines[2].endswith("[proxy] bad frame\\nsecond line, with comma")
    assert lines[1] == log_line(RECORDS[1])


def test_csv_format_round_trips(tmp_path):
    path = tmp_path / "out.csv"
    write_log_export(RECORDS, path)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["message"] for row in rows] == [record.message for record in RECORDS]
    assert [row["source"] for row in rows] == ["pool", "connection 2", "proxy"]
    assert rows[1]["connection"] == "2" and rows[0]["connection"] == ""


def test_jsonl_format_round_trips(tmp_path):
    path = tmp_path / "out.jsonl"
    write_log_export(RECORDS, path)
    loaded = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert loaded == [record.as_dict() for record in RECORDS]


def test_unknown_suffix_is_refused():
    with pytest.raises(ValueError, match=r"\.log, \.csv or \.jsonl"):
        format_of(Path("logs.txt"))


@pytest.mark.parametrize("fmt", ["log", "csv", "jsonl"])
def test_dialog_writes_only_the_filtered_view(qtbot, proxy, tmp_path, fmt):
    proxy.set_min_level(30)
    dialog = LogExportDialog(proxy, folder=tmp_path, clock=lambda: datetime(2026, 11, 25, 15, 30))
    qtbot.addWidget(dialog)
    dialog.open()
    dialog.view_button.setChecked(True)
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData(fmt))
    expected = tmp_path / f"feedpool-logs-20261125-153000.{fmt}"
    assert Path(dialog.path_edit.text()) == expected

    with qtbot.waitSignal(dialog.exported) as blocker:
        dialog.export()
    assert blocker.args == [expected, 2]
    reference = tmp_path / f"reference.{fmt}"
    write_log_export(RECORDS[1:], reference)
    assert expected.read_bytes() == reference.read_bytes()
    assert not dialog.isVisible()


def test_dialog_writes_all_records_by_default(qtbot, proxy, tmp_path):
    proxy.set_source("pool")
    dialog = LogExportDialog(proxy, folder=tmp_path)
    qtbot.addWidget(dialog)
    dialog.open()
    assert dialog.all_button.text() == "All records (3)"
    assert dialog.view_button.text() == "Only the current view (1)"
    dialog.export()
    written = Path(dialog.path_edit.text()).read_text(encoding="utf-8").splitlines()
    assert len(written) == 3


def test_dialog_browse_uses_the_chosen_file(qtbot, proxy, tmp_path, monkeypatch):
    chosen = tmp_path / "picked.csv"
    monkeypatch.setattr(
        "desktop.logs.export_dialog.QFileDialog.getSaveFileName",
        lambda *args, **kwargs: (str(chosen), "CSV (*.csv)"),
    )
    dialog = LogExportDialog(proxy, folder=tmp_path)
    qtbot.addWidget(dialog)
    dialog.open()
    dialog.browse()
    assert dialog.format_combo.currentData() == "csv"
    dialog.export()
    assert chosen.read_text(encoding="utf-8").startswith("time,level,source")


def test_dialog_reports_an_unwritable_file_and_stays_open(qtbot, proxy, tmp_path):
    dialog = LogExportDialog(proxy, folder=tmp_path / "missing" / "folder")
    qtbot.addWidget(dialog)
    dialog.open()
    dialog.export()
    assert dialog.isVisible()
    assert "Could not write" in dialog.error_label.text()


def test_each_opening_proposes_a_name_stamped_now_in_the_folder_used_last(qtbot, proxy, tmp_path):
    times = iter([datetime(2026, 11, 25, 9, 0, 0), datetime(2026, 11, 25, 15, 30, 5)])
    dialog = LogExportDialog(proxy, folder=tmp_path, clock=lambda: next(times))
    qtbot.addWidget(dialog)
    dialog.open()
    assert dialog.path_edit.text() == str(tmp_path / "feedpool-logs-20261125-090000.log")
    (tmp_path / "sub").mkdir()
    dialog.path_edit.setText(str(tmp_path / "sub" / "mine.log"))
    dialog.export()
    dialog.open()
    assert dialog.path_edit.text() == str(tmp_path / "sub" / "feedpool-logs-20261125-153005.log")


@pytest.fixture
def fresh_home(tmp_path, monkeypatch) -> Path:
    """A home folder as on a new account: empty, no Documents folder in it."""
    home = tmp_path / "fresh"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def test_on_a_fresh_account_the_export_goes_to_a_folder_that_exists(qtbot, proxy, fresh_home):
    dialog = LogExportDialog(proxy, clock=lambda: datetime(2026, 11, 25, 15, 30))
    qtbot.addWidget(dialog)
    dialog.open()
    proposed = Path(dialog.path_edit.text())
    assert proposed == fresh_home / "feedpool-logs-20261125-153000.log"
    with qtbot.waitSignal(dialog.exported):
        dialog.export()
    assert len(proposed.read_text(encoding="utf-8").splitlines()) == 3


def test_the_folder_exported_to_last_is_remembered_by_both_exports(
    qtbot, proxy, fresh_home, tmp_path, monkeypatch
):
    chosen = fresh_home / "exports"
    chosen.mkdir()
    first = LogExportDialog(proxy)
    qtbot.addWidget(first)
    first.open()
    first.path_edit.setText(str(chosen / "today.log"))
    first.export()

    later = LogExportDialog(proxy)  # as in the next run of the app
    qtbot.addWidget(later)
    later.open()
    assert Path(later.path_edit.text()).parent == chosen

    proposed = []
    monkeypatch.setattr(
        "desktop.main_window.QFileDialog.getSaveFileName",
        lambda parent, title, path, filters: proposed.append(Path(path)) or ("", ""),
    )
    window = MainWindow(watchlist_path=tmp_path / "w.json", settings_path=tmp_path / "s.json")
    qtbot.addWidget(window)
    window.export_watchlist_action.trigger()
    assert proposed == [chosen / "feedpool-watchlist.csv"]


@pytest.mark.parametrize(
    "case",
    [
        ("mine.jsonl", "mine.jsonl", "jsonl"),
        ("mine.csv", "mine.csv", "csv"),
        ("mine", "mine.log", "log"),
        ("mine.txt", "mine.log", "log"),
    ],
)
def test_a_typed_extension_decides_the_format(qtbot, proxy, tmp_path, case):
    typed, written, fmt = case
    dialog = LogExportDialog(proxy, folder=tmp_path)
    qtbot.addWidget(dialog)
    dialog.open()
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("log"))
    dialog.path_edit.setText(str(tmp_path / typed))
    with qtbot.waitSignal(dialog.exported) as blocker:
        dialog.export()
    assert blocker.args[0] == tmp_path / written
    reference = tmp_path / f"reference.{fmt}"
    write_log_export(RECORDS, reference)
    assert (tmp_path / written).read_bytes() == reference.read_bytes()
    assert dialog.format_combo.currentData() == fmt


def test_an_error_does_not_squeeze_the_fields(qtbot, proxy, tmp_path):
    dialog = LogExportDialog(proxy, folder=tmp_path / "missing")
    qtbot.addWidget(dialog)
    dialog.open()
    heights = {w: w.height() for w in (dialog.path_edit, dialog.format_combo, dialog.all_button)}
    dialog.export()
    qtbot.waitUntil(dialog.error_label.isVisible)
    dialog.layout().activate()
    assert {w: w.height() for w in heights} == heights
    label = dialog.error_label
    assert label.height() >= label.heightForWidth(label.width())  # every line of it in sight
