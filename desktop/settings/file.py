"""Reading, checking and writing ``settings.json``, the settings the dialog edits.

The file is a JSON object of setting names (as in :mod:`backend.runtime.settings`) to values.
Secrets (credentials, tokens) go to the OS keychain (:mod:`backend.security.keychain`) where there
is one, and into the file where there is none, so the file is written readable by its owner only
(mode 0600), through a temporary file renamed over the old one. Values are checked with
:meth:`backend.runtime.settings.Settings.replace`, whose
:class:`~backend.runtime.settings.SettingsError` names the setting and never shows a secret.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backend.runtime.settings import (
    SECRET_SETTINGS,
    SETTINGS_FILE_NAME,
    Secret,
    Settings,
    SettingsError,
    config_dir,
    read_settings_file,
)
from backend.security import keychain
from desktop.atomic_write import write_atomically

log = logging.getLogger("feedpool.desktop.settings")

FILE_MODE = 0o600


def default_settings_path() -> Path:
    return config_dir() / SETTINGS_FILE_NAME


def read_saved_settings(path: Path) -> dict[str, Any]:
    """The settings saved in ``path``; empty if there is no file yet."""
    return read_settings_file(path) if path.is_file() else {}


def default_values() -> dict[str, str]:
    """Every setting's default as text."""
    return {name: _text(value) for name, value in Settings().values().items()}


def current_values(path: Path) -> dict[str, str]:
    """Every setting's text as the dialog shows it: saved values over the defaults."""
    saved = {**read_saved_settings(path), **keychain.read(sorted(SECRET_SETTINGS))}
    return {**default_values(), **{name: _text(value) for name, value in saved.items()}}


def _text(value: object) -> str:
    if isinstance(value, Secret):
        return value.reveal()
    return "" if value is None else str(value)


def validate(values: Mapping[str, str]) -> Settings:
    """The settings ``values`` describe, or :class:`SettingsError` for the first bad one.

    Beyond each value's own check: a real broker needs its credentials (but for those its
    browser login saves, which the login after saving gives), and the bus and the WebSocket API
    cannot share a port.
    """
    settings = Settings().replace(**values)
    settings.check_credentials(before_login=True)
    if settings.ZMQ_PORT and settings.ZMQ_PORT == settings.WEBSOCKET_PORT:
        raise SettingsError("WEBSOCKET_PORT", settings.WEBSOCKET_PORT, "must differ from ZMQ_PORT")
    return settings


def file_values(settings: Settings, names: list[str]) -> dict[str, Any]:
    """The named settings as JSON values: numbers as numbers, secrets revealed."""
    values: dict[str, Any] = {}
    for name in names:
        value = getattr(settings, name)
        values[name] = value.reveal() if name in SECRET_SETTINGS else value
    return values


def write_settings(values: Mapping[str, Any], path: Path, merge: bool = True) -> None:
    """Write ``values`` to the settings file at ``path``, readable by its owner only.

    With ``merge``, settings already in the file that ``values`` does not name are kept. Secrets
    go to the keychain, and out of the file, when there is a keychain.
    """
    merged = {**read_saved_settings(path), **values} if merge else dict(values)
    secrets = {name: str(merged[name]) for name in SECRET_SETTINGS & merged.keys()}
    if secrets and keychain.store(secrets):
        merged = {name: value for name, value in merged.items() if name not in secrets}
    elif secrets:
        log.info("Secrets are kept in %s, %s", path, keychain.describe())
    write_atomically(path, json.dumps(merged, indent=2))
    path.chmod(FILE_MODE)
