"""The settings dialog validates with backend.runtime.settings and saves a private settings.json."""

from __future__ import annotations

import json
import logging
import stat

import pytest
from PySide6.QtWidgets import QLineEdit

from backend.runtime.settings import SettingsError, load_settings
from desktop.settings.dialog import SettingsDialog


@pytest.fixture
def dialog(qtbot, tmp_path) -> SettingsDialog:
    dialog = SettingsDialog(tmp_path / "config" / "settings.json")
    qtbot.addWidget(dialog)
    dialog.open()
    return dialog


def test_opens_without_blocking_and_shows_defaults(dialog):
    assert dialog.isVisible()
    assert dialog.broker_combo.currentData() == "simulator"
    assert dialog.fields["WEBSOCKET_PORT"].text() == "8765"
    assert dialog.fields["MAX_SYMBOLS_PER_WEBSOCKET"].text() == ""
    assert dialog.fields["MAX_SYMBOLS_PER_WEBSOCKET"].placeholderText().startswith("1,000 ")
    assert not dialog.broker_groups["angel"].isVisible()


def test_zerodha_shows_its_fields_and_its_limit(dialog):
    dialog.broker_combo.setCurrentIndex(dialog.broker_combo.findData("zerodha"))
    assert dialog.broker_groups["zerodha"].isVisible()
    assert not dialog.broker_groups["angel"].isVisible()
    assert dialog.fields["KITE_ACCESS_TOKEN"].echoMode() == QLineEdit.EchoMode.Password
    assert dialog.fields["MAX_SYMBOLS_PER_WEBSOCKET"].placeholderText().startswith("3,000 ")
    dialog.fields["KITE_ACCESS_TOKEN"].setText("kite-token")
    assert dialog.save() is False
    assert "KITE_API_KEY" in dialog.error_label.text()
    assert "kite-token" not in dialog.error_label.text()


def test_bad_port_is_refused_with_a_message_naming_it(qtbot, dialog):
    dialog.fields["ZMQ_PORT"].setText("70000")
    with qtbot.assertNotEmitted(dialog.applied):
        assert dialog.save() is False
    assert dialog.isVisible()
    assert dialog.error_label.isVisible()
    assert "ZMQ_PORT" in dialog.error_label.text()
    assert "70000" in dialog.error_label.text()
    assert dialog.fields["ZMQ_PORT"].selectedText() == "70000"  # the field to fix is selected
    assert not dialog.path.exists()


def test_same_port_twice_is_refused(dialog):
    dialog.fields["ZMQ_PORT"].setText("9000")
    dialog.fields["WEBSOCKET_PORT"].setText("9000")
    assert dialog.save() is False
    assert "must differ from ZMQ_PORT" in dialog.error_label.text()


def test_good_values_are_saved_privately_and_applied(qtbot, dialog):
    dialog.fields["WEBSOCKET_PORT"].setText("9876")
    dialog.fields["MAX_WEBSOCKET_CONNECTIONS"].setText("2")
    with qtbot.waitSignal(dialog.applied) as applied:
        assert dialog.save() is True
    assert applied.args[0].WEBSOCKET_PORT == 9876
    assert not dialog.isVisible()
    assert stat.S_IMODE(dialog.path.stat().st_mode) == 0o600
    saved = json.loads(dialog.path.read_text(encoding="utf-8"))
    assert saved["WEBSOCKET_PORT"] == 9876 and saved["MAX_WEBSOCKET_CONNECTIONS"] == 2
    assert load_settings(environ={}, settings_file=dialog.path).WEBSOCKET_PORT == 9876


def test_angel_one_needs_credentials_which_are_masked_in_errors(dialog):
    dialog.broker_combo.setCurrentIndex(dialog.broker_combo.findData("angel"))
    assert dialog.broker_groups["angel"].isVisible()
    dialog.fields["ANGEL_CLIENT_CODE"].setText("A123")
    dialog.fields["ANGEL_API_KEY"].setText("key-secret")
    assert dialog.save() is False
    assert "ANGEL_FEED_TOKEN" in dialog.error_label.text()
    assert "key-secret" not in dialog.error_label.text()


def test_kite_saves_without_the_token_its_login_brings_but_the_backend_asks_for_it(qtbot, dialog):
    dialog.broker_combo.setCurrentIndex(dialog.broker_combo.findData("zerodha"))
    dialog.fields["KITE_API_KEY"].setText("kite-key")
    with qtbot.waitSignal(dialog.applied) as applied:
        assert dialog.save() is True  # the login, offered once saved, brings the token
    with pytest.raises(SettingsError) as caught:
        applied.args[0].check_credentials()
    message = str(caught.value)
    assert "KITE_ACCESS_TOKEN" in message and "log in to Zerodha Kite" in message
    assert "kite-key" not in message


def test_credentials_are_password_fields_saved_but_never_logged(qtbot, dialog, caplog):
    assert all(
        dialog.fields[name].echoMode() == dialog.fields[name].EchoMode.Password
        for name in ("ANGEL_API_KEY", "ANGEL_FEED_TOKEN", "ANGEL_AUTH_TOKEN")
    )
    dialog.broker_combo.setCurrentIndex(dialog.broker_combo.findData("angel"))
    secrets = {"ANGEL_API_KEY": "k-1", "ANGEL_FEED_TOKEN": "f-2", "ANGEL_AUTH_TOKEN": "a-3"}
    dialog.fields["ANGEL_CLIENT_CODE"].setText("A123")
    for name, value in secrets.items():
        dialog.fields[name].setText(value)
    with caplog.at_level(logging.DEBUG), qtbot.waitSignal(dialog.applied) as applied:
        dialog.save()
    assert all(value not in caplog.text for value in secrets.values())
    assert all(value not in repr(applied.args[0]) for value in secrets.values())
    settings = load_settings(environ={}, settings_file=dialog.path)
    assert settings.BROKER == "angel"
    assert settings.ANGEL_AUTH_TOKEN.reveal() == "a-3"


def test_reopening_shows_saved_values_and_keeps_other_settings(qtbot, dialog):
    dialog.path.parent.mkdir(parents=True)
    dialog.path.write_text('{"SIMULATOR_TICKS_PER_SECOND": 5, "ZMQ_PORT": 6000}', encoding="utf-8")
    dialog.open()
    assert dialog.fields["ZMQ_PORT"].text() == "6000"
    dialog.save()
    saved = json.loads(dialog.path.read_text(encoding="utf-8"))
    assert saved["SIMULATOR_TICKS_PER_SECOND"] == 5 and saved["ZMQ_PORT"] == 6000


def test_unreadable_settings_file_is_reported_and_replaced(qtbot, dialog):
    dialog.path.parent.mkdir(parents=True, exist_ok=True)
    dialog.path.write_text("{broken", encoding="utf-8")
    dialog.open()
    assert "Saving replaces the file" in dialog.error_label.text()
    assert dialog.save() is True
    assert json.loads(dialog.path.read_text(encoding="utf-8"))["BROKER"] == "simulator"
