"""The logging handler that puts every backend log record on the bus, topic ``SYS.LOG``.

Each record becomes one :class:`~backend.bus.messages.LogRecord`::

    {"time": 1764069731.25, "level": "INFO", "logger": "feedpool.pool", "connection": 2,
     "sequence": 17, "message": "[POOL] Connection 2 started"}

``time`` is the record's creation time in epoch seconds; ``connection`` is the pooled connection
the record is about (the ``connection`` attribute the pool and the adapters set through
``extra``), or ``null``. ``sequence`` is the record's number in this process (see
:func:`number_records`; ``null`` if records are not numbered), which the backend's stderr shows
too, so a reader of both shows each record once. A record logged with an exception carries its
traceback after the message.

Publishing never logs, and a record emitted while this thread is already publishing one is
dropped, so the bus cannot log into itself.
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import Any

from backend.bus.messages import LogRecord
from backend.bus.publisher import ZmqPublisher
from backend.feed import LOG_TOPIC


def number_records() -> None:
    """Number every log record this process makes from now on, from 1, as ``record.sequence``."""
    make_record = logging.getLogRecordFactory()
    numbers = itertools.count(1)

    def numbered(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        record.sequence = next(numbers)
        return record

    logging.setLogRecordFactory(numbered)


class BusLogHandler(logging.Handler):
    """Publishes log records on ``SYS.LOG`` through ``publisher``. Thread-safe."""

    def __init__(self, publisher: ZmqPublisher, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.publisher = publisher
        self._publishing = threading.local()
        self._formatter = logging.Formatter()

    def handle(self, record: logging.LogRecord) -> bool:
        if getattr(self._publishing, "active", False):
            return False
        self._publishing.active = True
        try:
            return super().handle(record)
        finally:
            self._publishing.active = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.publisher.publish(LOG_TOPIC, self.entry(record))
        except Exception:
            self.handleError(record)

    def entry(self, record: logging.LogRecord) -> LogRecord:
        """The ``SYS.LOG`` message for ``record``."""
        message = record.getMessage()
        if record.exc_info:
            record.exc_text = record.exc_text or self._formatter.formatException(record.exc_info)
        if record.exc_text:
            message = f"{message}\n{record.exc_text}"
        connection = getattr(record, "connection", None)
        return LogRecord(
            time=record.created,
            level=record.levelname,
            logger=record.name,
            connection=connection if isinstance(connection, int) else None,
            sequence=getattr(record, "sequence", None),
            message=message,
        )
