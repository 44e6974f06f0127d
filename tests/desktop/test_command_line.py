"""``--attach NAME`` and ``--attach URL ...`` on the command line."""

from __future__ import annotations

import pytest

from desktop.command_line import parse_command_line
from desktop.link.attachment import make_attachment
from desktop.settings.attachments import save_attachment

KEY = "command-line-key-not-real"
URL_ARGS = ["--attach", "ws://127.0.0.1:8765", "--bus", "tcp://127.0.0.1:5555"]


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "attachments.json"
    values = {"name": "office", "api_url": "ws://10.0.0.5:8765", "bus": "tcp://10.0.0.5:5555"}
    save_attachment(make_attachment({**values, "api_key": KEY}), path)
    return path


def refusal(capsys, arguments: list[str], environ=None, saved=None) -> str:
    """The error line the command line exits with (status 2)."""
    with pytest.raises(SystemExit) as exited:
        parse_command_line(arguments, environ or {}, saved)
    assert exited.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert KEY not in error
    return error


def test_without_attach_the_app_runs_its_own_backend(saved):
    assert parse_command_line([], {}, saved) is None


def test_attach_by_name_takes_the_saved_attachment_with_its_key(saved):
    attachment = parse_command_line(["--attach", "office"], {}, saved)
    assert attachment.api_url == "ws://10.0.0.5:8765"
    assert attachment.api_key.reveal() == KEY


def test_attach_by_url_takes_the_key_from_the_environment(saved):
    attachment = parse_command_line(URL_ARGS, {"FEEDPOOL_API_KEY": KEY}, saved)
    assert (attachment.name, attachment.bus) == ("127.0.0.1:8765", "tcp://127.0.0.1:5555")
    assert attachment.api_key.reveal() == KEY
    other = parse_command_line([*URL_ARGS, "--api-key-env", "DESK_KEY"], {"DESK_KEY": "k2"}, saved)
    assert other.api_key.reveal() == "k2"


def test_wrong_arguments_are_refused_naming_the_flag(capsys, saved):
    environ = {"FEEDPOOL_API_KEY": KEY}
    assert refusal(capsys, ["--attach", "home"], saved=saved) == (
        "FeedPool: error: --attach: no attachment named 'home' is saved (saved: office)"
    )
    assert refusal(capsys, ["--attach", "office", "--bus", "tcp://h:1"], saved=saved) == (
        "FeedPool: error: --bus: goes with --attach URL only"
    )
    assert refusal(capsys, URL_ARGS, saved=saved) == (
        "FeedPool: error: --api-key-env: the variable FEEDPOOL_API_KEY holding the API key is"
        " not set"
    )
    assert refusal(capsys, [*URL_ARGS, "--fingerprint", "ab"], environ, saved).startswith(
        "FeedPool: error: --fingerprint: trusts a wss:// API only"
    )
    wss = ["--attach", "wss://h:1", "--bus", "tcp://h:2", "--fingerprint", "ab"]
    assert refusal(capsys, wss, environ, saved).startswith(
        "FeedPool: error: --fingerprint: 'ab' is not a SHA-256 fingerprint: expected 64 hex"
    )


def test_help_describes_attaching(capsys):
    with pytest.raises(SystemExit):
        parse_command_line(["--help"])
    text = capsys.readouterr().out
    assert "--attach NAME|URL" in text and "--bus-client-key PATH" in text
    assert "FeedPool --backend" in text
