"""The desktop app's backend supervisor without a window, for the soak (``bench/soak.py``).

Usage: ``python bench/soak_supervisor.py LOG_FILE``. It runs the backend the way the desktop app
does, with :class:`desktop.link.process.BackendProcess` (``python -m backend --parent-pid``,
restarted after a backoff when it dies) on a Qt core application and a qasync loop: no display
is needed. The backend's settings come from this process's environment.

Each state of the backend is printed as one JSON line on stdout, ``{"event": "state", "state":
..., "detail": ...}``, and each run that becomes ready as its ready line (a
:class:`backend.bus.messages.Ready`). The backend's output lines go to ``LOG_FILE``. The end of
stdin (or SIGTERM) stops the backend as the app stops it on quit, and then this process.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
from typing import TextIO

import msgspec
from PySide6.QtCore import QCoreApplication

# isort: split
import qasync  # after PySide6: qasync uses the Qt binding already imported

from desktop.link.process import BackendProcess


def emit(event: dict) -> None:
    print(json.dumps(event), flush=True)


def wait_for_eof(loop: asyncio.AbstractEventLoop, done: asyncio.Event) -> None:
    """Set ``done`` once stdin ends (run in a thread of its own)."""
    sys.stdin.read()
    loop.call_soon_threadsafe(done.set)


async def supervise(log: TextIO) -> None:
    """Run the backend until stdin ends or SIGTERM comes, then stop it."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    process = BackendProcess()
    process.state_changed.connect(
        lambda state, detail: emit({"event": "state", "state": state, "detail": detail})
    )

    process.ready.connect(lambda ready: emit(msgspec.to_builtins(ready)))
    process.output_line.connect(lambda line: print(line, file=log, flush=True))
    process.start()
    threading.Thread(target=wait_for_eof, args=(loop, done), daemon=True).start()
    await done.wait()
    await process.stop()


def main() -> None:
    app = QCoreApplication([sys.argv[0]])
    loop = qasync.QEventLoop(app)
    with loop, open(sys.argv[1], "a", encoding="utf-8") as log:
        loop.run_until_complete(supervise(log))


if __name__ == "__main__":
    main()
