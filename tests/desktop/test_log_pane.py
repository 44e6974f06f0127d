"""Log filtering by level, source and text; pause; following the tail."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from desktop.logs.entry import LogEntry
from desktop.logs.filter import LogFilterProxy
from desktop.logs.model import LogModel
from desktop.logs.pane import LogPane

RECORDS = [
    LogEntry(1.0, "DEBUG", "pool", "[POOL] balancing", "feedpool.pool"),
    LogEntry(2.0, "INFO", "connection 1", "connected", "feedpool.adapter", 1),
    LogEntry(3.0, "WARNING", "connection 2", "reconnecting in 2 s", "feedpool.adapter", 2),
    LogEntry(4.0, "ERROR", "proxy", "client sent INVALID_JSON", "feedpool.proxy"),
    LogEntry(5.0, "INFO", "app", "watchlist saved", "feedpool.desktop"),
    LogEntry(6.0, "CRITICAL", "pool", "[POOL] capacity exhausted", "feedpool.pool"),
]


@pytest.fixture
def model(qtbot) -> LogModel:
    model = LogModel(capacity=1000, flush_interval_ms=10_000)
    for record in RECORDS:
        model.append(record)
    model.flush()
    return model


def shown(proxy: LogFilterProxy) -> list[str]:
    return [entry.message for entry in proxy.visible_entries()]


def test_min_level_filter(model):
    proxy = LogFilterProxy(model)
    proxy.set_min_level(30)
    assert shown(proxy) == [
        "reconnecting in 2 s",
        "client sent INVALID_JSON",
        "[POOL] capacity exhausted",
    ]


def test_source_filter(model):
    proxy = LogFilterProxy(model)
    proxy.set_source("pool")
    assert shown(proxy) == ["[POOL] balancing", "[POOL] capacity exhausted"]
    proxy.set_source("connection 2")
    assert shown(proxy) == ["reconnecting in 2 s"]
    proxy.set_source(None)
    assert len(shown(proxy)) == len(RECORDS)


def test_text_filter_ignores_case_and_combines_with_level(model):
    proxy = LogFilterProxy(model)
    proxy.set_text("pool]")
    assert shown(proxy) == ["[POOL] balancing", "[POOL] capacity exhausted"]
    proxy.set_min_level(50)
    assert shown(proxy) == ["[POOL] capacity exhausted"]


def test_new_records_are_filtered_as_they_arrive(model):
    proxy = LogFilterProxy(model)
    proxy.set_min_level(40)
    model.append(LogEntry(7.0, "INFO", "pool", "quiet"))
    model.append(LogEntry(8.0, "ERROR", "pool", "loud"))
    model.flush()
    assert shown(proxy)[-1] == "loud"
    assert "quiet" not in shown(proxy)


def test_pane_controls_drive_the_filter(qtbot, model):
    pane = LogPane(model)
    qtbot.addWidget(pane)
    pane.level_combo.setCurrentIndex(pane.level_combo.findData(40))
    assert shown(pane.proxy) == ["client sent INVALID_JSON", "[POOL] capacity exhausted"]

    pane.level_combo.setCurrentIndex(0)
    pane.source_combo.setCurrentIndex(pane.source_combo.findData("app"))
    assert shown(pane.proxy) == ["watchlist saved"]

    pane.source_combo.setCurrentIndex(0)
    qtbot.keyClicks(pane.search_edit, "invalid")
    qtbot.waitUntil(lambda: shown(pane.proxy) == ["client sent INVALID_JSON"])
    assert pane.count_label.text().startswith("1 of 6")


def test_source_choices_grow_in_order_as_sources_appear(qtbot, model):
    pane = LogPane(model)
    qtbot.addWidget(pane)
    model.append(LogEntry(9.0, "INFO", "connection 10", "late"))
    model.append(LogEntry(9.0, "INFO", "simulator", "ticking"))
    model.flush()
    choices = [pane.source_combo.itemText(i) for i in range(pane.source_combo.count())]
    assert choices == [
        "All sources",
        "app",
        "pool",
        "proxy",
        "simulator",
        "connection 1",
        "connection 2",
        "connection 10",
    ]


def test_pause_button_holds_rows_back(qtbot, model):
    pane = LogPane(model)
    qtbot.addWidget(pane)
    qtbot.mouseClick(pane.pause_button, Qt.MouseButton.LeftButton)
    assert model.paused and pane.pause_button.text() == "Resume"
    model.append(LogEntry(10.0, "INFO", "pool", "held"))
    model.flush()
    assert "held" not in shown(pane.proxy)
    pane.pause_button.click()
    assert not model.paused
    assert shown(pane.proxy)[-1] == "held"


def add_records(model: LogModel, start: int, count: int) -> None:
    for number in range(start, start + count):
        model.append(LogEntry(float(number), "INFO", "pool", f"line {number}"))
    model.flush()


def shown_pane(qtbot, model: LogModel) -> LogPane:
    pane = LogPane(model)
    qtbot.addWidget(pane)
    pane.resize(600, 300)
    pane.show()
    qtbot.waitExposed(pane)
    return pane


def test_view_follows_the_tail_until_the_user_scrolls_up(qtbot):
    model = LogModel(capacity=500, flush_interval_ms=10_000)
    pane = shown_pane(qtbot, model)
    bar = pane.view.verticalScrollBar()

    add_records(model, 0, 200)
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum())
    assert pane.is_following()

    bar.setValue(10)  # the user scrolls up to read
    assert not pane.is_following()
    add_records(model, 200, 50)
    qtbot.waitUntil(lambda: bar.maximum() > 200)
    assert bar.value() == 10
    assert pane.view.indexAt(pane.view.viewport().rect().topLeft()).row() == 10

    bar.setValue(bar.maximum())  # back to the bottom: follow again
    assert pane.is_following()
    add_records(model, 250, 50)
    qtbot.waitUntil(lambda: bar.value() == bar.maximum() and bar.maximum() > 250)


def test_rows_dropped_off_the_top_do_not_move_what_is_being_read(qtbot):
    model = LogModel(capacity=100, flush_interval_ms=10_000)
    pane = shown_pane(qtbot, model)
    bar = pane.view.verticalScrollBar()
    add_records(model, 0, 100)
    qtbot.waitUntil(lambda: bar.maximum() > 0)

    bar.setValue(40)
    assert pane.view.rowAt(0) == 40  # reading "line 40" at the top
    add_records(model, 100, 15)  # the ring drops lines 0..14

    assert model.entry(0).message == "line 15"
    top = pane.proxy.index(pane.view.rowAt(0), 3).data()
    assert top == "line 40"
    assert not pane.is_following()


def test_the_level_filter_starts_at_info(qtbot, model):
    pane = LogPane(model)
    qtbot.addWidget(pane)
    assert pane.level_combo.currentText() == "Info"
    assert "[POOL] balancing" not in shown(pane.proxy)  # the DEBUG record
    assert "connected" in shown(pane.proxy)
