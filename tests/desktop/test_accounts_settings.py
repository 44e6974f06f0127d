"""Several broker accounts in the settings dialog: listed, ordered, each with its credentials and
limits, saved as ACCOUNTS with each account's secrets in the keychain under its name; a list of
one saved as today's settings of one broker."""

from __future__ import annotations

import json

import pytest

from backend.runtime.settings import load_settings
from backend.security import keychain
from desktop.settings.dialog import SettingsDialog

ANGEL = {
    "ANGEL_CLIENT_CODE": "A123",
    "ANGEL_API_KEY": "angel-key",
    "ANGEL_FEED_TOKEN": "angel-feed",
    "ANGEL_AUTH_TOKEN": "angel-auth",
}


@pytest.fixture
def dialog(qtbot, tmp_path) -> SettingsDialog:
    dialog = SettingsDialog(tmp_path / "config" / "settings.json")
    qtbot.addWidget(dialog)
    dialog.open()
    return dialog


def several(dialog: SettingsDialog) -> None:
    """Choose Several accounts, played by the real brokers."""
    dialog.broker_combo.setCurrentIndex(dialog.broker_combo.findData("accounts"))
    dialog.simulated_check.setChecked(False)


def fill(dialog: SettingsDialog, name: str, broker: str, **values: str) -> None:
    """Set the chosen account's name, broker and fields."""
    editor = dialog.accounts
    editor.name_field.setText(name)
    editor.name_field.textEdited.emit(name)
    editor.broker_combo.setCurrentIndex(editor.broker_combo.findData(broker))
    for setting, value in values.items():
        editor.fields[setting].setText(value)


def two_accounts(dialog: SettingsDialog) -> None:
    several(dialog)
    fill(dialog, "angel-main", "angel", **ANGEL, MAX_WEBSOCKET_CONNECTIONS="2")
    dialog.accounts.add_button.click()
    fill(dialog, "kite family", "zerodha", KITE_API_KEY="kite-key", KITE_API_SECRET="kite-secret")


def test_several_accounts_start_with_the_one_shown(dialog):
    dialog.broker_combo.setCurrentIndex(dialog.broker_combo.findData("zerodha"))
    dialog.fields["KITE_API_KEY"].setText("kite-key")
    several(dialog)
    assert dialog.accounts.isVisible() and not dialog.pool_group.isVisible()
    assert dialog.accounts.entries() == [
        {"name": "zerodha", "broker": "zerodha", "KITE_API_KEY": "kite-key"}
    ]
    assert dialog.accounts.log_in_button.text() == "Log in to Zerodha Kite"
    assert dialog.accounts.log_in_button.isVisible()


@pytest.mark.usefixtures("memory_keyring")
def test_two_accounts_are_saved_in_order_with_their_secrets_under_their_names(qtbot, dialog):
    two_accounts(dialog)
    with qtbot.waitSignal(dialog.applied) as applied:
        assert dialog.save() is True, dialog.error_label.text()
    saved = json.loads(dialog.path.read_text(encoding="utf-8"))
    assert saved["BROKER"] == "accounts"
    assert saved["ACCOUNTS"] == [
        {
            "name": "angel-main",
            "broker": "angel",
            "ANGEL_CLIENT_CODE": "A123",
            "MAX_WEBSOCKET_CONNECTIONS": 2,
        },
        {"name": "kite family", "broker": "zerodha"},
    ]
    assert keychain.read(["angel-main/ANGEL_FEED_TOKEN", "kite family/KITE_API_SECRET"]) == {
        "angel-main/ANGEL_FEED_TOKEN": "angel-feed",
        "kite family/KITE_API_SECRET": "kite-secret",
    }
    assert "angel-feed" not in dialog.path.read_text(encoding="utf-8")
    accounts = load_settings(environ={}, settings_file=dialog.path).accounts
    assert [(a.name, a.broker.name, a.connections) for a in accounts] == [
        ("angel-main", "angel", 2),
        ("kite family", "zerodha", 3),
    ]
    assert accounts[1].values["KITE_API_KEY"].reveal() == "kite-key"
    assert [a.name for a in applied.args[0].accounts] == ["angel-main", "kite family"]

    dialog.open()  # shown again as saved, and reordered
    assert dialog.several and dialog.accounts.list.count() == 2
    dialog.accounts.choose(1)
    assert dialog.accounts.fields["KITE_API_SECRET"].text() == "kite-secret"
    dialog.accounts.up_button.click()
    dialog.accounts.choose(1)
    dialog.accounts.remove_button.click()  # angel-main goes, and its secrets with it
    dialog.accounts.add_button.click()
    fill(dialog, "kite-2", "zerodha", KITE_API_KEY="key-2")
    assert dialog.save() is True, dialog.error_label.text()
    saved = json.loads(dialog.path.read_text(encoding="utf-8"))
    assert [entry["name"] for entry in saved["ACCOUNTS"]] == ["kite family", "kite-2"]
    assert keychain.read(["angel-main/ANGEL_FEED_TOKEN"]) == {}


def test_one_account_is_saved_as_the_settings_of_one_broker(qtbot, dialog):
    several(dialog)
    fill(dialog, "angel-main", "angel", **ANGEL)
    dialog.accounts.add_button.click()
    dialog.accounts.remove_button.click()
    with qtbot.waitSignal(dialog.applied):
        assert dialog.save() is True, dialog.error_label.text()
    saved = json.loads(dialog.path.read_text(encoding="utf-8"))
    assert "ACCOUNTS" not in saved
    assert saved["BROKER"] == "angel" and saved["ANGEL_CLIENT_CODE"] == "A123"
    assert saved["ANGEL_FEED_TOKEN"] == "angel-feed"  # no keychain here: the 0600 file keeps it
    settings = load_settings(environ={}, settings_file=dialog.path)
    assert settings.ACCOUNTS == () and settings.ANGEL_API_KEY.reveal() == "angel-key"
    dialog.open()
    assert dialog.broker_combo.currentData() == "angel"


def test_a_bad_value_is_named_with_its_account_and_its_field_chosen(dialog):
    two_accounts(dialog)
    dialog.accounts.choose(0)
    dialog.accounts.fields["MAX_WEBSOCKET_CONNECTIONS"].setText("many")
    assert dialog.save() is False
    message = dialog.error_label.text()
    assert "account 1 ('angel-main')" in message and "MAX_WEBSOCKET_CONNECTIONS" in message
    dialog.accounts.fields["MAX_WEBSOCKET_CONNECTIONS"].setText("")
    dialog.accounts.choose(1)
    dialog.accounts.fields["KITE_API_KEY"].setText("")
    dialog.accounts.choose(0)
    assert dialog.save() is False
    message = dialog.error_label.text()
    assert "KITE_API_KEY" in message and "'kite family'" in message
    assert "kite-secret" not in message
    assert dialog.accounts.list.currentRow() == 1
    assert not dialog.path.exists()


def test_the_simulator_may_play_the_accounts(qtbot, dialog):
    two_accounts(dialog)
    dialog.simulated_check.setChecked(True)
    assert not dialog.accounts.log_in_button.isVisible()
    with qtbot.waitSignal(dialog.applied) as applied:
        assert dialog.save() is True, dialog.error_label.text()
    assert applied.args[0].BROKER == "simulator"
    assert [a.broker.name for a in applied.args[0].accounts] == ["angel", "zerodha"]


def test_an_empty_list_is_refused(dialog):
    several(dialog)
    dialog.accounts.remove_button.click()
    assert dialog.save() is False
    assert "Add an account" in dialog.error_label.text()
