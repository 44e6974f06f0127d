"""Backend log records are numbered alike on stderr and on the bus (``SYS.LOG``'s ``sequence``)."""

from __future__ import annotations

import io
import logging

import pytest

from backend.__main__ import STDERR_FORMAT
from backend.bus.messages import LogRecord
from backend.feed import LOG_TOPIC
from backend.logs.bus_handler import BusLogHandler, number_records


class Recorder:
    """Stands in for the publisher: keeps what is published."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, LogRecord]] = []

    def publish(self, topic: str, record: LogRecord) -> None:
        self.messages.append((topic, record))


@pytest.fixture
def numbered():
    saved = logging.getLogRecordFactory()
    number_records()
    yield
    logging.setLogRecordFactory(saved)


def test_stderr_and_the_bus_carry_the_same_number(numbered):
    recorder = Recorder()
    handler = BusLogHandler(recorder)  # type: ignore[arg-type]
    logger = logging.getLogger("feedpool.test.numbers")
    logger.addHandler(handler)
    written = io.StringIO()
    stderr = logging.StreamHandler(written)
    stderr.setFormatter(logging.Formatter(STDERR_FORMAT))
    logger.addHandler(stderr)
    logger.propagate = False
    try:
        logger.warning("first")
        logger.warning("second")
    finally:
        logger.removeHandler(handler)
        logger.removeHandler(stderr)
        logger.propagate = True

    sequences = [record.sequence for topic, record in recorder.messages]
    assert [topic for topic, _ in recorder.messages] == [LOG_TOPIC, LOG_TOPIC]
    assert sequences[1] == sequences[0] + 1
    lines = written.getvalue().splitlines()
    assert [line.split()[2] for line in lines] == [f"#{n}" for n in sequences]
