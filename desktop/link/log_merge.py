"""Each backend log record shown once, though it comes both on stderr and on the bus.

The backend writes every record to stderr and publishes it on ``SYS.LOG``, both with the record's
number in the run (``sequence``). The bus is preferred: its records carry the connection they are
about and keep a traceback in one record. Stderr fills in what the bus cannot carry: the records
from before the app's subscription took effect, the reason a start fails, and the records of a
run after its bus has stopped. A record is shown from stderr unless the bus delivers or delivered
its number, and from the bus unless stderr already showed it.
"""

from __future__ import annotations

from collections import deque

#: Numbers shown from stderr that are remembered, for the bus's first records to be checked
#: against; stderr runs at most a few records ahead of the bus.
REMEMBERED = 4096


class LogMerge:
    """Decides, record by record, whether a backend record is new to the log pane."""

    def __init__(self) -> None:
        self.new_run()

    def new_run(self) -> None:
        """A new backend process: its records are numbered from 1 again."""
        self._first: int | None = None  # the first number the bus delivered in this run
        self._last = 0  # the last number it delivered
        self._live = False  # the bus delivers records now
        self._from_stderr: set[int] = set()
        self._order: deque[int] = deque()

    def bus_stopped(self) -> None:
        """The bus no longer delivers: stderr shows the records after its last one."""
        self._live = False

    def from_bus(self, sequence: int | None) -> bool:
        """Whether to show a ``SYS.LOG`` record numbered ``sequence``."""
        if sequence is None:
            return True
        if self._first is None:
            self._first = sequence
        self._live = True
        self._last = max(self._last, sequence)
        return sequence not in self._from_stderr

    def from_stderr(self, sequence: int | None) -> bool:
        """Whether to show a stderr line: a record numbered ``sequence``, or (``None``) any other
        text, such as a traceback's lines, which is shown while the bus delivers no records."""
        if sequence is None:
            return not self._live
        if (
            self._first is not None
            and sequence >= self._first
            and (self._live or sequence <= self._last)
        ):
            return False
        self._from_stderr.add(sequence)
        self._order.append(sequence)
        if len(self._order) > REMEMBERED:
            self._from_stderr.discard(self._order.popleft())
        return True
