"""FeedPool's entry point: the packaged app's script, and what ``python -m desktop`` runs.

One program plays three parts, chosen by the first argument before anything imports Qt:

- ``--backend [ARGS]``: the backend (``python -m backend ARGS``), as the packaged app starts it
  (:func:`desktop.link.command.backend_command` makes that command line, frozen or not).
- ``--self-test``: the headless end-to-end check of :mod:`desktop.self_test`; it needs no display
  and no Qt libraries.
- anything else: the desktop app (:func:`desktop.app.main`).
"""

from __future__ import annotations

import multiprocessing
import sys

from desktop.link.command import BACKEND_FLAG

SELF_TEST_FLAG = "--self-test"


def main(argv: list[str] | None = None) -> int:
    """Run the part ``argv`` (default ``sys.argv``) asks for; the exit status."""
    multiprocessing.freeze_support()
    argv = list(sys.argv if argv is None else argv)
    if argv[1:2] == [BACKEND_FLAG]:
        from backend.__main__ import main as backend_main

        return backend_main(argv[2:])
    if argv[1:2] == [SELF_TEST_FLAG]:
        from desktop.self_test import main as self_test_main

        return self_test_main()
    from desktop.app import main as app_main

    return app_main(argv)


if __name__ == "__main__":
    sys.exit(main())
