"""Credentials in the OS keychain, through keyring.

keyring reaches the system's store: Secret Service on Linux, the macOS Keychain, Windows
Credential Manager. Each secret setting is one password of the service ``FeedPool``, named as
the setting. Where keyring has no backend (headless Linux, CI) :func:`available` is false and
the secrets stay in the owner-only settings file instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import keyring
from keyring.errors import KeyringError

log = logging.getLogger("feedpool.keychain")

SERVICE = "FeedPool"


def available() -> bool:
    """Whether keyring has a backend that keeps secrets (its fallback has priority 0)."""
    try:
        return keyring.get_keyring().priority > 0
    except (KeyringError, RuntimeError):
        return False


def describe() -> str:
    """Where secrets are kept, for a log line."""
    if available():
        return f"the OS keychain ({type(keyring.get_keyring()).__name__})"
    return "the owner-only settings file (no OS keychain here)"


def read(names: Iterable[str]) -> dict[str, str]:
    """The secrets the keychain holds among ``names``."""
    if not available():
        return {}
    found = {}
    try:
        for name in names:
            value = keyring.get_password(SERVICE, name)
            if value:
                found[name] = value
    except KeyringError as exc:
        log.warning("Cannot read the OS keychain (%s); using the settings file", exc)
    return found


def store(values: Mapping[str, str]) -> bool:
    """Keep each secret in the keychain (an empty one is deleted); false without a keychain."""
    if not available():
        return False
    try:
        for name, value in values.items():
            if value:
                keyring.set_password(SERVICE, name, value)
            elif keyring.get_password(SERVICE, name) is not None:
                keyring.delete_password(SERVICE, name)
    except KeyringError as exc:
        log.warning("Cannot write the OS keychain (%s); secrets go to the settings file", exc)
        return False
    return True
