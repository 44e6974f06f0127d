"""Every way ``python -m backend`` can fail to start ends in one error line naming what to fix,
never in a traceback, and no error shows a value that may be a secret."""

from __future__ import annotations

import json

import pytest
from backend_process import allow_bus_client

import backend.__main__ as backend_main
from backend.runtime.settings import config_dir, load_settings, log_dir

SECRET = "SUPERSECRETVALUE123"


async def failed(backends, *args: str, **env: str) -> tuple[dict, int, str]:
    """The error line of a backend that does not start, its exit status, and everything it
    wrote (stdout, stderr and its log file); the line must be its only output on stdout."""
    backend, line = await backends(*args, **env)
    status = await backend.exited()
    assert await backend.process.stdout.read() == b""
    log = log_dir() / "backend.log"
    written = json.dumps(line) + backend.stderr.read_text() + log.read_text()
    assert "Traceback" not in written
    return line, status, written


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"BROKER": "\xffsimulator"}', "it is not UTF-8 text (byte 0xff at offset 12)"),
        (b"[" * 100_000, "it is nested too deeply"),
        (b'{"ZMQ_PORT": ' + b"1" * 5000 + b"}", "it holds a number of 5000 digits"),
    ],
    ids=["not-utf8", "too-deep", "huge-number"],
)
async def test_a_settings_file_that_cannot_be_read_is_an_error_line(backends, content, problem):
    path = config_dir() / "settings.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    line, status, _ = await failed(backends)
    assert status == 2  # a bad setting's: the desktop asks to correct it in File > Settings
    assert line["code"] == "INVALID_SETTING"
    assert line["message"].startswith(f"cannot use the settings file {path}: {problem}")


@pytest.fixture
def unwritable_config(tmp_path) -> dict[str, str]:
    """A config dir nothing can be written in, root included (the tests may run as root, which
    ignores a folder's mode): its parent is a regular file, so making or opening anything in it
    fails with NotADirectoryError."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the config dir's parent should be\n")
    return {"XDG_CONFIG_HOME": str(blocker / "config")}


#: What the error line says when the config dir (``{}``) cannot be written.
NOT_A_FOLDER = "cannot keep {what}: Not a directory; make {{}} a folder you can write to, or set "


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            (),
            {"FEEDPOOL_API_KEY": ""},
            NOT_A_FOLDER.format(what="the API key in {}/api_key") + "FEEDPOOL_API_KEY",
        ),
        (
            ("--print-api-key",),
            {"FEEDPOOL_API_KEY": ""},
            NOT_A_FOLDER.format(what="the API key in {}/api_key") + "FEEDPOOL_API_KEY",
        ),
        (
            (),
            {"BUS_CURVE": "on"},
            NOT_A_FOLDER.format(what="the bus's CURVE key pair in {}/bus") + "BUS_CURVE=off",
        ),
        (
            ("--allow-bus-client", "desk"),
            {},
            NOT_A_FOLDER.format(what="the bus's CURVE key pair in {}/bus") + "BUS_CURVE=off",
        ),
        (
            (),
            {"WEBSOCKET_TLS": "auto"},
            NOT_A_FOLDER.format(what="the generated TLS certificate in {}/tls")
            + "WEBSOCKET_TLS_CERT and WEBSOCKET_TLS_KEY",
        ),
    ],
    ids=["api-key", "print-api-key", "bus-keys", "allow-bus-client", "tls-certificate"],
)
async def test_a_config_dir_that_cannot_be_written_is_an_error_line(
    backends, unwritable_config, args, env, message
):
    folder = f"{unwritable_config['XDG_CONFIG_HOME']}/FeedPool"
    line, status, _ = await failed(backends, *args, **unwritable_config, **env)
    assert status == 1
    assert line == {
        "event": "error",
        "code": "CONFIG_DIR_ERROR",
        "message": message.format(folder, folder),
    }


async def test_bus_client_keys_that_cannot_be_written_are_an_error_line(backends):
    assert (await allow_bus_client("first"))[0] == 0  # the server's pair and a client's
    keys = config_dir() / "bus" / "client-keys"
    for made in keys.iterdir():
        made.unlink()
    keys.rmdir()
    keys.write_text("a file where the client keys' folder should be\n")
    line, status, _ = await failed(backends, "--allow-bus-client", "desk")
    assert status == 1 and line["code"] == "CONFIG_DIR_ERROR"
    assert line["message"].startswith(f"cannot keep the keys of bus client desk in {keys}: ")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ANGEL_TOTP_SECRT", SECRET, "unknown setting ANGEL_TOTP_SECRT in {} (did you mean "),
        ("SESSION", {"token": SECRET}, "unknown setting SESSION in {} (known settings: "),
        ("ANGEL_CLIENT_CODE", {"token": SECRET}, "invalid setting ANGEL_CLIENT_CODE: expected "),
        ("BROKER_USER_ID", ["user", SECRET], "invalid setting BROKER_USER_ID: expected "),
    ],
    ids=["misspelled-secret", "unknown-object", "setting-object", "setting-array"],
)
async def test_a_value_that_may_hide_a_secret_is_never_shown(backends, name, value, expected):
    path = config_dir() / "settings.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({name: value}))
    line, status, written = await failed(backends)
    assert status == 2 and line["code"] == "INVALID_SETTING"
    assert line["message"].startswith(expected.format(path))
    assert name in written and SECRET not in written


async def test_an_unforeseen_failure_is_an_error_line_with_its_type_and_no_secret(
    monkeypatch, capsys, tmp_path
):
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setattr(backend_main, "configure_logging", lambda: None)
    monkeypatch.setenv("ANGEL_AUTH_TOKEN", SECRET)
    assert load_settings().ANGEL_AUTH_TOKEN.reveal() == SECRET

    def broken(settings):
        raise RuntimeError(f"cannot open https://example/?token={SECRET}")

    monkeypatch.setattr(backend_main, "api_key", broken)
    assert backend_main.main(["--print-api-key"]) == 1
    out, err = capsys.readouterr()
    line = json.loads(out)
    assert line["code"] == "UNEXPECTED_ERROR"
    assert line["message"].startswith("unexpected RuntimeError in test_startup_errors.py:")
    assert line["message"].endswith("cannot open https://example/?token=***")
    assert SECRET not in out + err and "Traceback" not in out + err
