"""The local API key that clients of the WebSocket API authenticate with.

The key is the ``FEEDPOOL_API_KEY`` setting when it is set (environment, ``.env`` or the settings
file). Otherwise FeedPool generates one on first start and keeps it in :data:`KEY_FILE_NAME` in the
user config dir, readable and writable by its owner only (mode 0600 on POSIX; on Windows the
per-user config dir is private to its user already). Later starts read the same file, so a
trader's scripts keep working across restarts. ``python -m backend --print-api-key`` prints it.

The key is a :class:`~backend.security.secret.Secret`: it never appears in a log line or an error
text.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

from backend.runtime.settings import Settings, config_dir
from backend.security.private_files import OWNER_ONLY, PrivateFileError, keeping, tighten
from backend.security.secret import Secret

log = logging.getLogger("feedpool.apikey")

KEY_FILE_NAME = "api_key"
KEY_BYTES = 32  # of randomness; the key is their URL-safe base64 text, 43 characters


def key_file() -> Path:
    """Where the generated key is kept."""
    return config_dir() / KEY_FILE_NAME


def api_key(settings: Settings, path: Path | None = None) -> Secret:
    """The key clients must present: the setting if set, else the kept (or a new) key;
    :class:`~backend.security.private_files.PrivateFileError` if it cannot be kept."""
    if settings.FEEDPOOL_API_KEY:
        return settings.FEEDPOOL_API_KEY
    path = key_file() if path is None else path
    remedy = f"make {path.parent} a folder you can write to, or set FEEDPOOL_API_KEY"
    with keeping("the API key", path, remedy):
        return load_or_create(path)


def load_or_create(path: Path) -> Secret:
    """The key kept in ``path``; a new one is generated and written there if it has none."""
    key = _read(path)
    if key:
        return Secret(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(KEY_BYTES)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, OWNER_ONLY)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    try:
        # A link fails when another process kept its key first; that key is then the one.
        os.link(temporary, path)
        log.info("Generated a new API key in %s", path)
    except FileExistsError:
        key = _read(path) or _replace(temporary, path, key)
    except OSError:  # a file system without hard links
        key = _replace(temporary, path, key)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return Secret(key)


def _replace(temporary: Path, path: Path, key: str) -> str:
    """Keep ``key`` in ``path`` whatever is there (an empty file left by a crash)."""
    os.replace(temporary, path)
    log.info("Generated a new API key in %s", path)
    return key


def _read(path: Path) -> str:
    """The key in ``path``, or ``""`` if there is no file or it is empty; tightens its mode."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return ""
    except UnicodeDecodeError:
        raise PrivateFileError(
            f"{path} holds no API key (it is not ASCII text); delete it to generate a new key, "
            "or set FEEDPOOL_API_KEY"
        ) from None
    tighten(path)
    return text
