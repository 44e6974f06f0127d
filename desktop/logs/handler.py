"""A ``logging.Handler`` that puts the app's own log records into a :class:`LogModel`."""

from __future__ import annotations

import logging

from desktop.logs.entry import APP_SOURCE, LogEntry, normalise_level
from desktop.logs.model import LogModel


class LogModelHandler(logging.Handler):
    """Queues each record on the model with source ``app``; safe from any thread."""

    def __init__(self, model: LogModel, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._model = model

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
            self._model.append(
                LogEntry(
                    time=record.created,
                    level=normalise_level(record.levelname),
                    source=APP_SOURCE,
                    message=message,
                    logger=record.name,
                )
            )
        except Exception:  # a logging handler must never raise into the code that logged
            self.handleError(record)
