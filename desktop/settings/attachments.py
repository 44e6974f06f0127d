"""Saved attachments: the backends the app may attach to, kept for the next start.

``attachments.json`` in the user config dir maps each attachment's name to its fields but the API
key, and is written readable by its owner only (mode 0600), through a temporary file renamed over
the old one. The API keys go to the OS keychain (:mod:`backend.security.keychain`), one password per
attachment (:func:`key_name`); where there is no keychain they stay in the file, as the settings'
secrets do, and a log line says so. CA and key files are referenced by their paths, never copied.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from backend.runtime.settings import config_dir
from backend.security import keychain
from desktop.atomic_write import write_atomically
from desktop.link.attachment import Attachment, make_attachment
from desktop.settings.file import FILE_MODE

log = logging.getLogger("feedpool.desktop.settings")

FILE_NAME = "attachments.json"


def default_attachments_path() -> Path:
    return config_dir() / FILE_NAME


def key_name(name: str) -> str:
    """The keychain's name for the API key of the attachment ``name``."""
    return f"ATTACHMENT_API_KEY {name}"


def _entries(path: Path) -> dict[str, dict[str, Any]]:
    try:
        entries = json.loads(path.read_text(encoding="utf-8")).get("attachments", {})
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, AttributeError) as exc:
        log.warning("Cannot read the saved attachments in %s (%s); saving replaces it", path, exc)
        return {}
    return {name: entry for name, entry in entries.items() if isinstance(entry, dict)}


def saved_names(path: Path) -> list[str]:
    """The names of the attachments saved in ``path``, in the order they were first saved."""
    return list(_entries(path))


def saved_values(name: str, path: Path) -> dict[str, str]:
    """The fields of the attachment ``name`` as saved, its API key included; ``KeyError`` if
    there is none of that name."""
    values = {field: str(value) for field, value in _entries(path)[name].items()}
    kept = keychain.read([key_name(name)]).get(key_name(name))
    if kept:
        values["api_key"] = kept
    values["name"] = name
    return values


def load_attachment(name: str, path: Path) -> Attachment:
    """The attachment saved as ``name``: ``KeyError`` if there is none,
    :class:`~desktop.link.attachment.AttachmentError` if it cannot be used as saved (a key file
    gone, say)."""
    return make_attachment(saved_values(name, path))


def save_attachment(attachment: Attachment, path: Path) -> None:
    """Save ``attachment`` in ``path`` under its name, replacing one of that name."""
    entries = _entries(path)
    entry: dict[str, Any] = attachment.public_values()
    del entry["name"]
    key = attachment.api_key.reveal()
    if not keychain.store({key_name(attachment.name): key}):
        entry["api_key"] = key
        log.info("The API key of %s is kept in %s, %s", attachment.name, path, keychain.describe())
    entries[attachment.name] = entry
    write_atomically(path, json.dumps({"attachments": entries}, indent=2))
    path.chmod(FILE_MODE)
