"""The backend subprocess: started, watched until ready, restarted when it dies, stopped on quit.

:func:`desktop.link.command.backend_command` decides the command line. A run is *starting* until the
backend prints its ready line (a :class:`~backend.bus.messages.Ready`) on stdout, then *ready*; an
event line that does not match its type (:func:`~backend.bus.messages.decode_line`) ends a run
that is starting. When a run ends unasked (an error line, a
:class:`~backend.bus.messages.StartupFailure`, and its exit, no ready line within
:data:`READY_TIMEOUT_MS`, a crash, a kill), the state is *restarting* and a
new run starts after a backoff (:data:`BACKOFF_MS`); it is *failed*, with no retry, when the
cause cannot go away by itself: a bad setting (exit status 2) or a program that cannot be run.
:meth:`BackendProcess.stop` terminates the backend and kills it if it has not exited within
:data:`STOP_TIMEOUT_MS`.

Each stderr line (and any stdout line that is not an event) is emitted on :attr:`output_line`.
The last :data:`TAIL_LINES` of a run are kept and logged with the reason when the run ends
unasked, so a crash traceback, which never reaches the bus, is shown.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Mapping

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from backend.bus.messages import MalformedMessage, Ready, StartupFailure, decode_line
from desktop.link.command import backend_command

log = logging.getLogger("feedpool.desktop.backend")

READY_TIMEOUT_MS = 30_000
STOP_TIMEOUT_MS = 3_000  # the backend's own shutdown takes at most 2 s
BACKOFF_MS = (500, 1_000, 2_000, 5_000, 10_000, 30_000)
#: A run that stayed ready this long counts as healthy: the next restart waits the least again.
STABLE_SECONDS = 60.0
TAIL_LINES = 40
EXIT_BAD_SETTING = 2

STARTING, READY, RESTARTING, FAILED, STOPPING, STOPPED = (
    "starting",
    "ready",
    "restarting",
    "failed",
    "stopping",
    "stopped",
)


def exit_text(code: int, status: QProcess.ExitStatus) -> str:
    """How a run ended, for people; ``code`` is the exit status, or the signal on POSIX."""
    if status == QProcess.ExitStatus.CrashExit:
        signal = f" by signal {code}" if os.name == "posix" and code else ""
        return f"it crashed or was killed{signal}"
    return f"it exited with status {code}"


class _LineBuffer:
    """Bytes in, complete text lines out."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[str]:
        *lines, self._pending = (self._pending + data).split(b"\n")
        return [line.decode("utf-8", "replace").rstrip("\r") for line in lines]

    def rest(self) -> list[str]:
        pending, self._pending = self._pending, b""
        return [pending.decode("utf-8", "replace").rstrip("\r")] if pending.strip() else []


class BackendProcess(QObject):
    """Runs the backend, one run at a time, with ``environment`` added to this process's."""

    #: The state (starting, ready, restarting, failed, stopping, stopped) and why, for people.
    state_changed = Signal(str, str)
    #: The run is ready: its ready line, a :class:`~backend.bus.messages.Ready`.
    ready = Signal(object)
    #: A line the backend wrote on stderr (or a stdout line that is not an event).
    output_line = Signal(str)

    def __init__(
        self, environment: Mapping[str, str] | None = None, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.environment = dict(environment or {})
        self.state = STOPPED
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._process: QProcess | None = None
        self._stdout = _LineBuffer()
        self._stderr = _LineBuffer()
        self._failure = ""  # why the current run is ending, when the backend or we know
        self._failures = 0  # unasked ends in a row, for the backoff
        self._ready_since = 0.0
        self._ready_timer = self._single_shot(self._ready_timed_out)
        self._restart_timer = self._single_shot(self.start)

    def _single_shot(self, slot: Callable[[], None]) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.timeout.connect(slot)
        return timer

    def environ(self) -> dict[str, str]:
        """The environment the backend runs with."""
        return {**os.environ, **self.environment}

    @property
    def pid(self) -> int | None:
        """The running backend's process id."""
        if self._process is None or self._process.state() != QProcess.ProcessState.Running:
            return None
        return self._process.processId()

    def start(self) -> None:
        """Start a run, unless one is under way."""
        if self._process is not None:
            return
        self._restart_timer.stop()
        program, arguments = backend_command(os.getpid())
        environment = QProcessEnvironment.systemEnvironment()
        for name, value in self.environment.items():
            environment.insert(name, value)
        process = QProcess(self)
        process.setProcessEnvironment(environment)
        process.setProgram(program)
        process.setArguments(arguments)
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._error)
        self._process = process
        self._stdout, self._stderr = _LineBuffer(), _LineBuffer()
        self._failure = ""
        self._tail.clear()
        self._set_state(STARTING)
        self._ready_timer.start(READY_TIMEOUT_MS)
        process.start()

    async def stop(self) -> None:
        """Stop the backend: terminate it, and kill it if it has not exited in time."""
        self._restart_timer.stop()
        process = self._process
        if process is None:
            if self.state != STOPPED:
                self._set_state(STOPPED)
            return
        finished = asyncio.get_running_loop().create_future()

        def on_finished() -> None:
            if not finished.done():
                finished.set_result(None)

        process.finished.connect(on_finished)
        self._set_state(STOPPING)
        process.terminate()
        await asyncio.wait({finished}, timeout=STOP_TIMEOUT_MS / 1000)
        if not finished.done():
            log.warning("The backend did not stop within %g s; killing it", STOP_TIMEOUT_MS / 1000)
            process.kill()
            await finished

    async def restart(self) -> None:
        """Stop the backend (if it runs) and start a new one at once."""
        await self.stop()
        self._failures = 0
        self.start()

    def _set_state(self, state: str, detail: str = "") -> None:
        self.state = state
        self.state_changed.emit(state, detail)

    def _read_stdout(self) -> None:
        if self._process is not None:
            for line in self._stdout.feed(self._process.readAllStandardOutput().data()):
                self._stdout_line(line)

    def _read_stderr(self) -> None:
        if self._process is not None:
            for line in self._stderr.feed(self._process.readAllStandardError().data()):
                self._output(line)

    def _output(self, line: str) -> None:
        if line.strip():
            self._tail.append(line)
            self.output_line.emit(line)

    def _stdout_line(self, line: str) -> None:
        try:
            event = decode_line(line)
        except MalformedMessage as exc:
            self._output(line)
            if self.state == STARTING:
                self._ready_timer.stop()
                self._end_run(f"it printed a {exc}")
            return
        if event is None:
            self._output(line)
        elif isinstance(event, StartupFailure):
            self._failure = f"{event.message} ({event.code})"
        elif isinstance(event, Ready) and self.state == STARTING:
            self._ready(event)

    def _ready(self, ready: Ready) -> None:
        self._ready_timer.stop()
        self._ready_since = time.monotonic()
        self._set_state(READY, f"{ready.broker}, {ready.ws}")
        self.ready.emit(ready)

    def _ready_timed_out(self) -> None:
        self._end_run(f"it did not report ready within {READY_TIMEOUT_MS / 1000:g} s")

    def _end_run(self, why: str) -> None:
        """Kill the current run because of ``why``; it restarts like after a crash."""
        self._failure = why
        if self._process is not None:
            self._process.kill()

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._read_stdout()
        self._read_stderr()
        for line in self._stdout.rest() + self._stderr.rest():
            self._output(line)
        self._ready_timer.stop()
        process, self._process = self._process, None
        if process is not None:
            process.deleteLater()
        if self.state == STOPPING:
            self._set_state(STOPPED)
            return
        why = self._failure or exit_text(code, status)
        if self._tail:
            log.error("The backend stopped: %s. Its last output:\n%s", why, "\n".join(self._tail))
        else:
            log.error("The backend stopped: %s", why)
        if status == QProcess.ExitStatus.NormalExit and code == EXIT_BAD_SETTING:
            self._set_state(FAILED, f"{why}; correct it in File > Settings")
            return
        self._schedule_restart(why)

    def _error(self, error: QProcess.ProcessError) -> None:
        if error != QProcess.ProcessError.FailedToStart or self._process is None:
            return  # a crash or a kill: ``finished`` follows
        process, self._process = self._process, None
        why = f"cannot run {process.program()}: {process.errorString()}"
        process.deleteLater()
        self._ready_timer.stop()
        log.error("The backend cannot start: %s", why)
        self._set_state(FAILED, why)

    def _schedule_restart(self, why: str) -> None:
        if self._ready_since and time.monotonic() - self._ready_since >= STABLE_SECONDS:
            self._failures = 0
        self._ready_since = 0.0
        delay = BACKOFF_MS[min(self._failures, len(BACKOFF_MS) - 1)]
        self._failures += 1
        self._set_state(RESTARTING, f"{why}; starting again in {delay / 1000:g} s")
        self._restart_timer.start(delay)
