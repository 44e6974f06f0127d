"""Secrets go to the OS keychain where keyring has one, and to the owner-only file where not."""

from __future__ import annotations

import json
import logging

from backend.runtime.settings import load_settings
from backend.security import keychain
from desktop.settings.file import current_values, write_settings

PIN = "4321-not-a-real-pin"


def test_with_a_keychain_secrets_leave_the_settings_file(tmp_path, memory_keyring):
    path = tmp_path / "settings.json"
    write_settings({"ANGEL_PIN": PIN, "ANGEL_CLIENT_CODE": "A1"}, path)

    saved = json.loads(path.read_text())
    assert saved == {"ANGEL_CLIENT_CODE": "A1"}
    assert memory_keyring.passwords == {(keychain.SERVICE, "ANGEL_PIN"): PIN}
    assert load_settings({}, path, tmp_path / ".env").ANGEL_PIN.reveal() == PIN
    assert current_values(path)["ANGEL_PIN"] == PIN

    write_settings({"ANGEL_PIN": ""}, path)
    assert memory_keyring.passwords == {}


def test_a_secret_left_in_the_file_moves_to_the_keychain(tmp_path, memory_keyring):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"ANGEL_PIN": PIN}))
    write_settings({"ANGEL_CLIENT_CODE": "A1"}, path)
    assert PIN not in path.read_text()
    assert memory_keyring.passwords[keychain.SERVICE, "ANGEL_PIN"] == PIN


def test_without_a_keychain_secrets_stay_in_the_owner_only_file(tmp_path, caplog):
    path = tmp_path / "settings.json"
    assert not keychain.available()
    with caplog.at_level(logging.INFO):
        write_settings({"ANGEL_PIN": PIN}, path)
    assert json.loads(path.read_text()) == {"ANGEL_PIN": PIN}
    assert path.stat().st_mode & 0o777 == 0o600
    assert "no OS keychain" in caplog.text and PIN not in caplog.text
    assert load_settings({}, path, tmp_path / ".env").ANGEL_PIN.reveal() == PIN
