"""The attach dialog checks each field with a message naming it, saves a good attachment for the
next start (its API key in the keychain where there is one) and attaches to it."""

from __future__ import annotations

import json
import logging
import stat

import pytest
import zmq
import zmq.auth

from backend.security import keychain
from desktop.main_window import MainWindow
from desktop.settings.attach_dialog import AttachDialog
from desktop.settings.attachments import key_name

API_KEY = "attach-dialog-key-not-real"
PIN = "ab12" * 16


@pytest.fixture
def key_files(tmp_path) -> tuple[str, str]:
    """A client key pair as --allow-bus-client writes it: the public and the secret key file."""
    public, secret = zmq.auth.create_certificates(tmp_path, "desk")
    return str(public), str(secret)


@pytest.fixture
def good(key_files) -> dict[str, str]:
    server_public, _ = zmq.curve_keypair()
    return {
        "name": "office",
        "api_url": "wss://10.0.0.5:8765",
        "bus": "tcp://10.0.0.5:5555",
        "api_key": API_KEY,
        "fingerprint": PIN,
        "bus_server_key": server_public.decode(),
        "bus_client_key_file": key_files[1],
    }


@pytest.fixture
def dialog(qtbot, tmp_path) -> AttachDialog:
    dialog = AttachDialog(tmp_path / "config" / "attachments.json")
    qtbot.addWidget(dialog)
    dialog.open()
    return dialog


def fill(dialog: AttachDialog, values: dict[str, str]) -> None:
    for name, field in dialog.fields.items():
        field.setText(values.get(name, ""))


@pytest.mark.parametrize(
    "case",
    [
        ("name", "", "Name: give the attachment a name"),
        ("api_url", "http://10.0.0.5:8765", "API URL: expected ws://HOST:PORT or wss://HOST:PORT"),
        ("bus", "10.0.0.5:5555", "Bus endpoint: expected tcp://HOST:PORT"),
        ("api_key", "", "API key: needed"),
        ("fingerprint", "ab12cd", "Certificate fingerprint: 'ab12cd' is not a SHA-256"),
        ("fingerprint", "zz" * 32, "Certificate fingerprint: 'zzzz"),
        ("bus_server_key", "tooShort", "Bus server key: expected the bus server's CURVE public"),
        ("bus_client_key_file", "/no/such.key_secret", "Bus client key file: cannot read"),
    ],
)
def test_a_bad_field_is_named_and_selected(qtbot, dialog, good, case, caplog):
    field, value, message = case
    fill(dialog, {**good, field: value})
    with caplog.at_level(logging.DEBUG), qtbot.assertNotEmitted(dialog.attach):
        assert dialog.save() is False
    assert dialog.isVisible()
    assert dialog.error_label.text().startswith(message)
    assert dialog.fields[field].selectedText() == value
    assert API_KEY not in dialog.error_label.text() + caplog.text
    assert not dialog.path.exists()


def test_a_public_key_file_is_no_client_key(dialog, good, key_files):
    fill(dialog, {**good, "bus_client_key_file": key_files[0]})
    assert dialog.save() is False
    assert "holds no secret key" in dialog.error_label.text()


def test_a_ca_file_must_be_a_readable_certificate(dialog, good, key_files):
    fill(dialog, {**good, "fingerprint": "", "ca_file": key_files[0]})
    assert dialog.save() is False
    assert dialog.error_label.text().startswith("CA file: ")
    assert "holds no PEM certificate" in dialog.error_label.text()


def test_a_good_attachment_is_saved_without_its_key_and_listed_next_start(
    qtbot, dialog, good, memory_keyring, tmp_path
):
    fill(dialog, {**good, "fingerprint": PIN.upper()})
    with qtbot.waitSignal(dialog.attach) as attached:
        assert dialog.save() is True
    attachment = attached.args[0]
    assert attachment.fingerprint == PIN
    assert attachment.api_key.reveal() == API_KEY
    assert not dialog.isVisible()
    assert API_KEY not in dialog.path.read_text(encoding="utf-8")
    assert json.loads(dialog.path.read_text(encoding="utf-8"))["attachments"]["office"] == {
        name: value for name, value in attachment.public_values().items() if name != "name"
    }
    assert memory_keyring.passwords == {(keychain.SERVICE, key_name("office")): API_KEY}

    # The next start lists it, in the menu and in the dialog, API key and all.
    window = MainWindow(attachments_path=dialog.path, settings_path=tmp_path / "settings.json")
    qtbot.addWidget(window)
    menu = window.saved_attachments_menu
    assert menu.isEnabled() and [action.text() for action in menu.actions()] == ["office"]
    with qtbot.waitSignal(window.attach_requested) as requested:
        menu.actions()[0].trigger()
    assert requested.args[0] == attachment
    window.attach_dialog.open()
    window.attach_dialog.saved_combo.setCurrentIndex(1)
    assert window.attach_dialog.values() == {**good, "ca_file": ""}


def test_without_a_keychain_the_key_stays_in_the_owner_only_file(dialog, good, caplog):
    assert not keychain.available()
    fill(dialog, good)
    with caplog.at_level(logging.INFO):
        assert dialog.save() is True
    saved = json.loads(dialog.path.read_text(encoding="utf-8"))["attachments"]["office"]
    assert saved["api_key"] == API_KEY
    assert stat.S_IMODE(dialog.path.stat().st_mode) == 0o600
    assert "no OS keychain" in caplog.text and API_KEY not in caplog.text


def test_a_saved_attachment_that_cannot_be_used_opens_the_dialog_on_it(
    qtbot, dialog, good, key_files, tmp_path
):
    fill(dialog, good)
    assert dialog.save() is True
    (tmp_path / "desk.key_secret").unlink()
    window = MainWindow(attachments_path=dialog.path, settings_path=tmp_path / "settings.json")
    qtbot.addWidget(window)
    with qtbot.assertNotEmitted(window.attach_requested):
        window.attach_saved("office")
    assert window.attach_dialog.isVisible()
    assert window.attach_dialog.saved_combo.currentText() == "office"
    assert "Bus client key file: cannot read" in window.statusBar().currentMessage()
