"""The log model: bounded ring, batched flushes, pause, sources, records from the bus, the
backend's stderr and the app's logging handler."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

import pytest
from bus_messages import log_record
from PySide6.QtCore import Qt

from desktop.logs.entry import LogEntry, entry_from_bus, entry_from_output, source_of
from desktop.logs.filter import LogFilterProxy
from desktop.logs.handler import LogModelHandler
from desktop.logs.model import LogModel
from desktop.logs.ring_buffer import RingBuffer


def entry(number: int, level: str = "INFO", source: str = "pool") -> LogEntry:
    return LogEntry(1764060000.0 + number, level, source, f"message {number}")


@pytest.fixture
def model(qtbot) -> LogModel:
    return LogModel(capacity=10, flush_interval_ms=10_000)


def messages(model: LogModel) -> list[str]:
    return [model.entry(row).message for row in range(model.rowCount())]


def test_append_waits_for_flush(model):
    model.append(entry(1))
    assert model.rowCount() == 0
    model.flush()
    assert messages(model) == ["message 1"]


def test_ring_keeps_only_the_newest_capacity_records(model):
    for number in range(25):
        model.append(entry(number))
    model.flush()
    assert model.rowCount() == 10
    assert messages(model) == [f"message {n}" for n in range(15, 25)]

    for number in range(25, 28):
        model.append(entry(number))
    model.flush()
    assert messages(model) == [f"message {n}" for n in range(18, 28)]


def test_full_ring_removes_oldest_rows_then_inserts_the_batch(qtbot, model):
    for number in range(10):
        model.append(entry(number))
    model.flush()
    events = []
    model.rowsRemoved.connect(lambda parent, first, last: events.append(("removed", first, last)))
    model.rowsInserted.connect(lambda parent, first, last: events.append(("inserted", first, last)))
    for number in range(10, 13):
        model.append(entry(number))
    model.flush()
    assert events == [("removed", 0, 2), ("inserted", 7, 9)]


def test_timer_flushes_at_its_interval(qtbot):
    model = LogModel(capacity=10, flush_interval_ms=20)
    model.append(entry(1))
    with qtbot.waitSignal(model.flushed, timeout=2000) as blocker:
        pass
    assert blocker.args == [1]
    assert model.rowCount() == 1


def test_pause_holds_records_until_resume(model):
    model.append(entry(1))
    model.flush()
    model.set_paused(True)
    model.append(entry(2))
    model.flush()
    assert messages(model) == ["message 1"]
    model.set_paused(False)
    assert messages(model) == ["message 1", "message 2"]


def test_new_sources_are_announced_once(qtbot, model):
    seen = []
    model.source_seen.connect(seen.append)
    model.append(entry(1, source="pool"))
    model.append(entry(2, source="connection 2"))
    model.append(entry(3, source="pool"))
    model.flush()
    model.append(entry(4, source="pool"))
    model.flush()
    assert sorted(seen) == ["connection 2", "pool"]
    assert model.sources() == ["connection 2", "pool"]


def test_level_colours_the_row(model):
    model.append(entry(1, "ERROR"))
    model.append(entry(2, "INFO"))
    model.flush()
    error_colour = model.data(model.index(0, 3), Qt.ItemDataRole.ForegroundRole)
    assert error_colour is not None and error_colour.name() == "#dc2626"
    assert model.data(model.index(1, 3), Qt.ItemDataRole.ForegroundRole) is None


@pytest.mark.parametrize(
    ("logger", "connection", "source"),
    [
        ("feedpool.pool", None, "pool"),
        ("feedpool.pool.balancer", None, "pool"),
        ("feedpool.proxy", None, "proxy"),
        ("feedpool.adapter", 2, "connection 2"),
        ("feedpool.simulator", None, "simulator"),
        ("websockets.server", None, "websockets"),
        ("", None, "backend"),
    ],
)
def test_source_of(logger, connection, source):
    assert source_of(logger, connection) == source


def test_entry_from_bus_payload():
    record = entry_from_bus(
        log_record(
            "[POOL] connection 2 full", time=1764060000.123, level="warn", connection=2, sequence=7
        )
    )
    assert record == LogEntry(
        1764060000.123, "WARNING", "connection 2", "[POOL] connection 2 full", "feedpool.pool", 2, 7
    )


def test_entry_from_a_backend_stderr_record():
    record = entry_from_output(
        "2026-11-25 14:09:36,825 WARNING feedpool.pool [POOL] Capacity exhausted: 3000/3000"
    )
    assert (record.level, record.source, record.logger) == ("WARNING", "pool", "feedpool.pool")
    assert record.message == "[POOL] Capacity exhausted: 3000/3000"
    assert datetime.fromtimestamp(record.time) == datetime(2026, 11, 25, 14, 9, 36, 825000)


def test_other_stderr_lines_are_the_backends():
    record = entry_from_output('  File "backend/pool/connection_pool.py", line 3, in subscribe')
    assert (record.level, record.source) == ("INFO", "backend")
    assert record.message == '  File "backend/pool/connection_pool.py", line 3, in subscribe'


def test_handler_feeds_app_records_from_any_thread(qtbot, model):
    logger = logging.getLogger("feedpool.desktop.test")
    logger.propagate = False
    handler = LogModelHandler(model)
    logger.addHandler(handler)
    try:
        worker = threading.Thread(target=logger.warning, args=("from a thread %d", 7))
        worker.start()
        worker.join()
        logger.error("in the GUI thread")
    finally:
        logger.removeHandler(handler)
    model.flush()
    records = [model.entry(row) for row in range(model.rowCount())]
    assert [(r.source, r.level, r.message) for r in records] == [
        ("app", "WARNING", "from a thread 7"),
        ("app", "ERROR", "in the GUI thread"),
    ]


def test_ring_buffer_indexes_after_wrapping():
    ring: RingBuffer[int] = RingBuffer(4)
    ring.extend([1, 2, 3, 4])
    ring.drop_front(3)
    ring.extend([5, 6, 7])
    assert list(ring) == [4, 5, 6, 7]
    assert ring[0] == 4 and ring[3] == 7
    with pytest.raises(OverflowError):
        ring.extend([8])
    with pytest.raises(IndexError):
        ring[4]


def test_a_multi_line_record_is_a_row_per_line_and_one_record(qtbot):
    model = LogModel(capacity=100, flush_interval_ms=10_000)
    tail = "\n".join(f"line {number}" for number in range(1, 41))
    crash = LogEntry(
        1764060000.0,
        "ERROR",
        "app",
        f"The backend stopped: it crashed. Its last output:\n{tail}",
        "feedpool.desktop.backend",
    )
    model.append(entry(1))
    model.append(crash)
    model.append(entry(2))
    model.flush()

    assert model.rowCount() == 1 + 41 + 1
    texts = [model.data(model.index(row, 3)) for row in range(model.rowCount())]
    assert texts[1] == "The backend stopped: it crashed. Its last output:"
    assert texts[2:42] == [f"line {number}" for number in range(1, 41)]
    assert not any("\n" in text for text in texts)
    # Time, level and source on the record's first line only; every line in its level's colour.
    assert model.data(model.index(1, 1)) == "ERROR" and model.data(model.index(2, 1)) == ""
    assert model.data(model.index(2, 0)) == ""
    colours = {
        model.data(model.index(row, 3), Qt.ItemDataRole.ForegroundRole).name()
        for row in range(1, 42)
    }
    assert colours == {"#dc2626"}
    assert model.entry(30) is crash
    assert list(model.entries()) == [entry(1), crash, entry(2)]


def test_a_multi_line_record_is_filtered_whole():
    model = LogModel(capacity=100, flush_interval_ms=10_000)
    model.append(LogEntry(1.0, "ERROR", "app", "Traceback:\n  File x\nValueError: bad", "feedpool"))
    model.append(entry(2))
    model.flush()
    proxy = LogFilterProxy(model)
    proxy.set_text("valueerror")
    assert proxy.rowCount() == 3
    assert [e.message for e in proxy.visible_entries()] == ["Traceback:\n  File x\nValueError: bad"]
