"""Settings: the four layers in order, and a clear refusal of every bad value."""

import json

import pytest

from backend.runtime.settings import Secret, Settings, SettingsError, load_settings


@pytest.fixture
def files(tmp_path):
    return tmp_path / "settings.json", tmp_path / ".env"


def test_defaults(files):
    settings = load_settings({}, *files)
    assert settings.max_symbols_per_connection == 1000
    assert settings.max_connections == 3
    assert settings.capacity == 3000
    assert settings.over_broker_limits() == []
    assert (settings.ZMQ_HOST, settings.ZMQ_PORT) == ("127.0.0.1", 5555)
    assert (settings.WEBSOCKET_HOST, settings.WEBSOCKET_PORT) == ("127.0.0.1", 8765)
    assert settings.BROKER == "simulator"


def test_layers_override_in_order(files):
    settings_file, env_file = files
    settings_file.write_text(
        json.dumps({"ZMQ_PORT": 6000, "WEBSOCKET_PORT": 9000, "BROKER": "angel"})
    )
    env_file.write_text("# comment\nexport WEBSOCKET_PORT=9100\nMAX_WEBSOCKET_CONNECTIONS='2'\n")
    settings = load_settings({"MAX_WEBSOCKET_CONNECTIONS": "1", "PATH": "/bin"}, *files)
    assert settings.ZMQ_PORT == 6000  # settings file
    assert settings.WEBSOCKET_PORT == 9100  # .env beats the settings file
    assert settings.MAX_WEBSOCKET_CONNECTIONS == 1  # environment beats .env
    assert settings.BROKER == "angel"


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("MAX_WEBSOCKET_CONNECTIONS", "zero", "whole number from 1 to 100"),
        ("MAX_WEBSOCKET_CONNECTIONS", "0", "whole number from 1 to 100"),
        ("ZMQ_PORT", "70000", "whole number from 0 to 65535"),
        ("WEBSOCKET_PORT", "-1", "whole number from 0 to 65535"),
        ("BROKER", "kite", "one of simulator, angel, zerodha"),
        ("ANGEL_WS_URL", "http://example", "ws:// or wss:// URL"),
        ("SIMULATOR_TICKS_PER_SECOND", "fast", "a number from 0.0 to 1000.0"),
        ("WEBSOCKET_TLS", "yes", "one of off, on, auto"),
        ("BUS_CURVE", "auto", "one of off, on"),
        ("ALLOW_INSECURE_REMOTE", "maybe", "1 or 0 (true or false)"),
    ],
)
def test_bad_values_name_the_setting_the_value_and_what_is_allowed(files, name, value, allowed):
    with pytest.raises(SettingsError) as caught:
        load_settings({name: value}, *files)
    message = str(caught.value)
    assert name in message and repr(value) in message and allowed in message


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("ZMQ_PORT", "expected a whole number from 0 to 65535"),
        ("BROKER", "expected one of simulator, angel, zerodha"),
        ("SIMULATOR_TICKS_PER_SECOND", "expected a number from 0.0 to 1000.0"),
    ],
)
def test_a_null_in_the_settings_file_is_shown_as_null(files, name, allowed):
    settings_file, env_file = files
    settings_file.write_text(json.dumps({name: None}))
    with pytest.raises(SettingsError) as caught:
        load_settings({}, settings_file, env_file)
    message = str(caught.value)
    assert f"{name}=null" in message and allowed in message and "''" not in message


def test_a_null_limit_is_the_brokers_own(files):
    settings_file, env_file = files
    settings_file.write_text(json.dumps({"MAX_SYMBOLS_PER_WEBSOCKET": None}))
    assert load_settings({}, settings_file, env_file).max_symbols_per_connection == 1000


@pytest.mark.parametrize(
    ("text", "value"), [("1", True), ("True", True), ("0", False), ("", False)]
)
def test_allow_insecure_remote_is_a_flag(files, text, value):
    assert load_settings({"ALLOW_INSECURE_REMOTE": text}, *files).ALLOW_INSECURE_REMOTE is value


def test_unknown_key_in_the_settings_file_is_reported(files):
    settings_file, env_file = files
    settings_file.write_text(json.dumps({"MAX_SYMBOLS_PER_WEBSOKET": 10}))
    with pytest.raises(SettingsError, match="MAX_SYMBOLS_PER_WEBSOKET"):
        load_settings({}, settings_file, env_file)


def test_garbage_settings_file_is_reported(files):
    settings_file, env_file = files
    settings_file.write_text("{not json")
    with pytest.raises(SettingsError, match=r"settings\.json"):
        load_settings({}, settings_file, env_file)


def test_credentials_never_show(files):
    settings = load_settings({"ANGEL_API_KEY": "k-12345", "ANGEL_AUTH_TOKEN": "jwt-secret"}, *files)
    assert settings.ANGEL_API_KEY == Secret("k-12345")
    assert settings.ANGEL_API_KEY.reveal() == "k-12345"
    assert "k-12345" not in repr(settings) and "jwt-secret" not in str(settings)


def test_replace_validates(files):
    settings = load_settings({}, *files)
    assert settings.replace(WEBSOCKET_PORT="0").WEBSOCKET_PORT == 0
    with pytest.raises(SettingsError, match="WEBSOCKET_PORT"):
        settings.replace(WEBSOCKET_PORT="70000")


def test_an_unknown_setting_is_named_with_the_likeliest_meant_never_its_value(files):
    settings_file, env_file = files
    settings_file.write_text(json.dumps({"angel_totp_secrt": "SUPERSECRETVALUE123"}))
    with pytest.raises(SettingsError) as caught:
        load_settings({}, settings_file, env_file)
    assert str(caught.value) == (
        f"unknown setting angel_totp_secrt in {settings_file} (did you mean ANGEL_TOTP_SECRET?)"
    )
    assert caught.value.name == "angel_totp_secrt"
    with pytest.raises(SettingsError, match=r"^unknown setting WEBSOCKET_PROT \(did you mean "):
        Settings().replace(WEBSOCKET_PROT="SUPERSECRETVALUE123")


@pytest.mark.parametrize("value", [{"token": "SUPERSECRETVALUE123"}, ["SUPERSECRETVALUE123"]])
@pytest.mark.parametrize("name", ["BROKER_USER_ID", "ANGEL_PIN"])
def test_a_json_object_or_array_is_refused_unshown(files, name, value):
    settings_file, env_file = files
    settings_file.write_text(json.dumps({name: value}))
    with pytest.raises(SettingsError, match=f"^invalid setting {name}(=\\*\\*\\*)?: expected text"):
        load_settings({}, settings_file, env_file)


def test_a_long_value_is_cut_short(files):
    with pytest.raises(SettingsError) as caught:
        load_settings({"ZMQ_PORT": "9" * 5000}, *files)
    assert str(caught.value) == (
        f"invalid setting ZMQ_PORT='{'9' * 59}...: expected a whole number from 0 to 65535"
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"ANGEL_PIN 1234\n", "line 1 is not KEY=VALUE"),
        (
            b"# mine\nBROKER=\xe9\n",
            "it is not UTF-8 text (byte 0xe9 at offset 14); save it as UTF-8",
        ),
    ],
)
def test_an_env_file_that_cannot_be_read_is_named_never_its_lines(files, content, problem):
    settings_file, env_file = files
    env_file.write_bytes(content)
    with pytest.raises(SettingsError) as caught:
        load_settings({}, settings_file, env_file)
    assert str(caught.value) == f"cannot use the settings file {env_file}: {problem}"
