"""Reading, checking and writing ``settings.json``, the settings the dialog edits.

The file is a JSON object of setting names (as in :mod:`backend.runtime.settings`) to values.
Secrets (credentials, tokens) go to the OS keychain (:mod:`backend.security.keychain`) where there
is one, and into the file where there is none, so the file is written readable by its owner only
(mode 0600), through a temporary file renamed over the old one. Each broker account of
``ACCOUNTS`` keeps its secrets under its own name
(:func:`~backend.runtime.accounts.keychain_name`): the entries this module reads carry them, and
the entries it writes are stripped of them where the keychain takes them. Values are checked with
:meth:`backend.runtime.settings.Settings.replace`, whose
:class:`~backend.runtime.settings.SettingsError` names the setting and never shows a secret.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backend.brokers import BROKERS
from backend.runtime.accounts import keychain_name, raw_accounts
from backend.runtime.settings import (
    SECRET_SETTINGS,
    SETTINGS_FILE_NAME,
    Secret,
    Settings,
    SettingsError,
    config_dir,
    read_settings_file,
    with_kept_secrets,
)
from backend.security import keychain
from desktop.atomic_write import write_atomically

log = logging.getLogger("feedpool.desktop.settings")

FILE_MODE = 0o600
ACCOUNTS = "ACCOUNTS"
#: An account entry: its ``name``, ``broker`` and settings, by setting name.
AccountEntry = dict[str, Any]


def default_settings_path() -> Path:
    return config_dir() / SETTINGS_FILE_NAME


def read_saved_settings(path: Path) -> dict[str, Any]:
    """The settings saved in ``path``; empty if there is no file yet."""
    return read_settings_file(path) if path.is_file() else {}


def default_values() -> dict[str, str]:
    """Every setting's default as text (``ACCOUNTS``: none, empty)."""
    values = {name: _text(value) for name, value in Settings().values().items()}
    return {**values, ACCOUNTS: ""}


def current_values(path: Path) -> dict[str, str]:
    """Every setting's text as the dialog shows it: saved values over the defaults;
    ``ACCOUNTS`` as the JSON text of :func:`saved_accounts`, or empty."""
    saved = {**read_saved_settings(path), **keychain.read(sorted(SECRET_SETTINGS))}
    accounts = saved.pop(ACCOUNTS, None)
    values = {**default_values(), **{name: _text(value) for name, value in saved.items()}}
    if accounts:
        values[ACCOUNTS] = json.dumps(_account_entries(accounts))
    return values


def saved_accounts(path: Path) -> list[AccountEntry]:
    """The accounts saved in ``path``, in order, each with the secrets the keychain keeps for
    it; :class:`SettingsError` for an ``ACCOUNTS`` that is no list of accounts."""
    return _account_entries(read_saved_settings(path).get(ACCOUNTS, ""))


def _account_entries(value: object) -> list[AccountEntry]:
    """The account objects of an ``ACCOUNTS`` value, each with the secrets the keychain keeps
    for it."""
    return [dict(entry) for entry in raw_accounts(with_kept_secrets(value), _accounts_error)]


def _accounts_error(problem: str) -> SettingsError:
    return SettingsError(ACCOUNTS, [], problem)


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


def write_settings(
    values: Mapping[str, Any], path: Path, merge: bool = True, remove: tuple[str, ...] = ()
) -> None:
    """Write ``values`` to the settings file at ``path``, readable by its owner only.

    With ``merge``, settings already in the file that ``values`` does not name are kept, but
    those named in ``remove``. Secrets go to the keychain, and out of the file, when there is a
    keychain. The ``ACCOUNTS`` entries of ``values`` are whole, their secrets in them: each
    account's are kept under its name (an empty one deleted), and those of an account no longer
    listed are deleted.
    """
    try:
        saved = read_saved_settings(path)
    except SettingsError:
        if merge:
            raise
        saved = {}  # replaced whole
    merged = {**saved, **values} if merge else dict(values)
    for name in remove:
        merged.pop(name, None)
    secrets = {name: str(merged[name]) for name in SECRET_SETTINGS & merged.keys()}
    if ACCOUNTS in values or ACCOUNTS in remove:
        secrets.update(_account_secrets(_listed(saved.get(ACCOUNTS)), values.get(ACCOUNTS) or []))
    if secrets and keychain.store(secrets):
        merged = {name: value for name, value in merged.items() if name not in SECRET_SETTINGS}
        if merged.get(ACCOUNTS):
            merged[ACCOUNTS] = [_without_secrets(entry) for entry in merged[ACCOUNTS]]
    elif secrets:
        log.info("Secrets are kept in %s, %s", path, keychain.describe())
    write_atomically(path, json.dumps(merged, indent=2))
    path.chmod(FILE_MODE)


def _listed(value: object) -> list[AccountEntry]:
    """The account objects a saved ``ACCOUNTS`` holds; none where it holds none."""
    try:
        return raw_accounts(value or "", _accounts_error)
    except SettingsError:
        return []


def _secret_names(entry: Mapping[str, Any]) -> list[str]:
    broker = BROKERS.get(str(entry.get("broker", "")).strip().lower())
    return [s.name for s in broker.settings if s.name in SECRET_SETTINGS] if broker else []


def _account_secrets(before: list[AccountEntry], after: list[AccountEntry]) -> dict[str, str]:
    """The accounts' secrets by keychain name: those of ``after``, and empty (deleted) for each
    of ``before`` that ``after`` does not set."""
    secrets = {
        keychain_name(str(entry.get("name", "")).strip(), name): ""
        for entry in before
        for name in _secret_names(entry)
    }
    for entry in after:
        for name in _secret_names(entry):
            secrets[keychain_name(str(entry["name"]).strip(), name)] = str(entry.get(name) or "")
    return secrets


def _without_secrets(entry: Mapping[str, Any]) -> AccountEntry:
    return {name: value for name, value in entry.items() if name not in SECRET_SETTINGS}
