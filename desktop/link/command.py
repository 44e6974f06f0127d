"""The command line that runs the backend, from source or from the packaged app.

The packaged app has no Python interpreter to run ``-m backend`` with, so it starts its own
executable with :data:`BACKEND_FLAG`, which :func:`desktop.entry.main` hands to the backend.
No Qt here: the self-test and the backend flag run without it.
"""

from __future__ import annotations

import sys

BACKEND_FLAG = "--backend"


def backend_command(parent_pid: int) -> tuple[str, list[str]]:
    """The program and arguments that run the backend on behalf of process ``parent_pid``.

    From source, this interpreter with ``-m backend``; frozen by PyInstaller, the app's own
    executable with :data:`BACKEND_FLAG`.
    """
    if getattr(sys, "frozen", False):
        return sys.executable, [BACKEND_FLAG, "--parent-pid", str(parent_pid)]
    return sys.executable, ["-m", "backend", "--parent-pid", str(parent_pid)]
