"""Files and folders for their owner's eyes only: the API key, the TLS key, the bus's keys.

On POSIX a private file has mode 0600 and a private folder 0700. On Windows modes are left alone:
the per-user config dir is private to its user already.

Code that keeps such a file runs ``with keeping(what, path, remedy):``, so a folder it cannot
write (read-only, or a file where a folder should be) is a :class:`PrivateFileError` naming the
file, the reason and what to do, not a bare :class:`OSError`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("feedpool.files")

OWNER_ONLY = 0o600
OWNER_ONLY_DIR = 0o700


class PrivateFileError(OSError):
    """A private file cannot be kept; the message names it, says why and what to do."""


@contextlib.contextmanager
def keeping(what: str, path: Path, remedy: str) -> Iterator[None]:
    """Turn an :class:`OSError` within into :class:`PrivateFileError`: ``cannot keep {what} in
    {path}: {reason}; {remedy}``. One raised within already names its file and passes."""
    try:
        yield
    except PrivateFileError:
        raise
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise PrivateFileError(f"cannot keep {what} in {path}: {reason}; {remedy}") from None


def private_dir(path: Path) -> Path:
    """``path`` as a folder only its owner may enter, made (with its parents) if missing."""
    path.mkdir(mode=OWNER_ONLY_DIR, parents=True, exist_ok=True)
    tighten(path, OWNER_ONLY_DIR)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, owner-only from the first byte, replacing it whole."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, OWNER_ONLY)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


def tighten(path: Path, mode: int = OWNER_ONLY) -> None:
    """Take from others what ``mode`` does not give them on ``path``, saying so if it did."""
    if os.name != "posix":
        return
    current = stat.S_IMODE(path.stat().st_mode)
    if current & ~mode:
        path.chmod(mode)
        log.warning("%s was readable by others (mode %o); now %o", path, current, mode)
