"""FeedPool's settings: one frozen :class:`Settings`, read from four layers.

Later layers win: built-in defaults < ``settings.json`` in the user config dir < a ``.env`` file in
the working directory < the process environment. Every value is validated while loading; a bad one
raises :class:`SettingsError` naming the setting, the value and what is allowed, so the backend can
refuse to start with one clear line instead of failing later.

Broker credentials are held as :class:`Secret`, whose ``str`` and ``repr`` are masked, so a
settings object can be logged or shown in an error without leaking them.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "FeedPool"
SETTINGS_FILE_NAME = "settings.json"
BROKERS = ("simulator", "angel")


class SettingsError(ValueError):
    """A setting has a value FeedPool cannot use."""

    def __init__(self, name: str, value: object, allowed: str) -> None:
        shown = "***" if name in SECRET_SETTINGS else repr(value)
        super().__init__(f"invalid setting {name}={shown}: {allowed}")
        self.name = name


class Secret:
    """A credential: its text is only reachable through :meth:`reveal`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


def config_dir() -> Path:
    """The user config dir: settings and the local API key live here."""
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    """The user data dir: watchlists live here."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def log_dir() -> Path:
    """The user log dir: rotating log files live here."""
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def _integer(low: int, high: int) -> Callable[[str, str], int]:
    def parse(name: str, text: str) -> int:
        try:
            value = int(str(text).strip())
        except ValueError:
            raise SettingsError(
                name, text, f"expected a whole number from {low} to {high}"
            ) from None
        if not low <= value <= high:
            raise SettingsError(name, text, f"expected a whole number from {low} to {high}")
        return value

    return parse


def _number(low: float, high: float) -> Callable[[str, str], float]:
    def parse(name: str, text: str) -> float:
        try:
            value = float(str(text).strip())
        except ValueError:
            raise SettingsError(name, text, f"expected a number from {low} to {high}") from None
        if not low <= value <= high:
            raise SettingsError(name, text, f"expected a number from {low} to {high}")
        return value

    return parse


def _host(name: str, text: str) -> str:
    value = str(text).strip()
    if not value or any(c.isspace() for c in value) or "/" in value:
        raise SettingsError(name, text, "expected a host name or IP address, such as 127.0.0.1")
    return value


def _choice(*choices: str) -> Callable[[str, str], str]:
    def parse(name: str, text: str) -> str:
        value = str(text).strip().lower()
        if value not in choices:
            raise SettingsError(name, text, f"expected one of {', '.join(choices)}")
        return value

    return parse


def _url(name: str, text: str) -> str:
    value = str(text).strip()
    if value and not value.startswith(("ws://", "wss://")):
        raise SettingsError(name, text, "expected a ws:// or wss:// URL, or empty for the default")
    return value


def _text(name: str, text: str) -> str:
    return str(text).strip()


def _secret(name: str, text: str) -> Secret:
    return Secret(str(text).strip())


_PORT = _integer(1, 65535)
_PORT_OR_ZERO = _integer(0, 65535)

# name -> (default, parser). The names are the keys in every layer.
_SPEC: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "MAX_SYMBOLS_PER_WEBSOCKET": ("1000", _integer(1, 100_000)),
    "MAX_WEBSOCKET_CONNECTIONS": ("3", _integer(1, 100)),
    "ZMQ_HOST": ("127.0.0.1", _host),
    "ZMQ_PORT": ("5555", _PORT_OR_ZERO),
    "WEBSOCKET_HOST": ("127.0.0.1", _host),
    "WEBSOCKET_PORT": ("8765", _PORT_OR_ZERO),
    "BROKER": ("simulator", _choice(*BROKERS)),
    "BROKER_USER_ID": ("", _text),
    "ANGEL_CLIENT_CODE": ("", _text),
    "ANGEL_API_KEY": ("", _secret),
    "ANGEL_FEED_TOKEN": ("", _secret),
    "ANGEL_AUTH_TOKEN": ("", _secret),
    "ANGEL_WS_URL": ("wss://smartapisocket.angelone.in/smart-stream", _url),
    "INSTRUMENT_MASTER": ("", _text),
    "SIMULATOR_TICKS_PER_SECOND": ("1.0", _number(0.0, 1000.0)),
    "SIMULATOR_SEED": ("", _text),
    "WS_MIN_INTERVAL_MS": ("0", _integer(0, 60_000)),
    "FEEDPOOL_API_KEY": ("", _secret),
}

SECRET_SETTINGS = frozenset(name for name, (_, parse) in _SPEC.items() if parse is _secret)


@dataclass(frozen=True)
class Settings:
    """Every pool, bus and broker setting, validated. Field names are the settings' names."""

    MAX_SYMBOLS_PER_WEBSOCKET: int = 1000
    MAX_WEBSOCKET_CONNECTIONS: int = 3
    ZMQ_HOST: str = "127.0.0.1"
    ZMQ_PORT: int = 5555
    WEBSOCKET_HOST: str = "127.0.0.1"
    WEBSOCKET_PORT: int = 8765
    BROKER: str = "simulator"
    #: Who the pool belongs to; defaults to the broker client code.
    BROKER_USER_ID: str = ""
    ANGEL_CLIENT_CODE: str = ""
    ANGEL_API_KEY: Secret = field(default_factory=lambda: Secret(""))
    ANGEL_FEED_TOKEN: Secret = field(default_factory=lambda: Secret(""))
    ANGEL_AUTH_TOKEN: Secret = field(default_factory=lambda: Secret(""))
    ANGEL_WS_URL: str = "wss://smartapisocket.angelone.in/smart-stream"
    #: A path to an instrument master (bundled CSV format or Angel One's scrip-master JSON).
    INSTRUMENT_MASTER: str = ""
    SIMULATOR_TICKS_PER_SECOND: float = 1.0
    SIMULATOR_SEED: str = ""
    #: Per client, at most one update per symbol and mode in this many ms (the newest); 0: off.
    WS_MIN_INTERVAL_MS: int = 0
    #: The key clients authenticate with; empty: the generated key kept in the user config dir.
    FEEDPOOL_API_KEY: Secret = field(default_factory=lambda: Secret(""))

    @property
    def capacity(self) -> int:
        """Symbols the pool may hold: connections times symbols per connection."""
        return self.MAX_SYMBOLS_PER_WEBSOCKET * self.MAX_WEBSOCKET_CONNECTIONS

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed, each validated like a loaded value."""
        parsed = {name: _parse(name, value) for name, value in changes.items()}
        return dataclasses.replace(self, **parsed)


def _parse(name: str, value: object) -> Any:
    if name not in _SPEC:
        raise SettingsError(name, value, f"unknown setting; known settings: {', '.join(_SPEC)}")
    if isinstance(value, Secret):
        value = value.reveal()
    return _SPEC[name][1](name, "" if value is None else str(value))


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a ``.env`` file; blank lines, comments and ``export`` are allowed."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"{path}:{number}", raw, "expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def read_settings_file(path: Path) -> dict[str, str]:
    """The JSON object in ``settings.json``: setting names to values."""
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SettingsError(str(path), "<file>", f"expected a JSON object ({exc})") from None
    if not isinstance(loaded, dict):
        raise SettingsError(str(path), "<file>", "expected a JSON object of settings")
    return {str(key): value for key, value in loaded.items()}


def load_settings(
    environ: Mapping[str, str] | None = None,
    settings_file: Path | None = None,
    env_file: Path | None = None,
) -> Settings:
    """Settings from defaults < settings file < ``.env`` < environment.

    The settings file and ``.env`` may be absent. Only the known settings are taken from the
    environment and ``.env``; the settings file must hold known settings only, so a typo in it
    is reported instead of silently ignored.
    """
    environ = os.environ if environ is None else environ
    settings_file = config_dir() / SETTINGS_FILE_NAME if settings_file is None else settings_file
    env_file = Path(".env") if env_file is None else env_file

    merged: dict[str, object] = {name: default for name, (default, _) in _SPEC.items()}
    if settings_file.is_file():
        from_file = read_settings_file(settings_file)
        for name in from_file:
            if name not in _SPEC:
                raise SettingsError(name, from_file[name], f"unknown setting in {settings_file}")
        merged.update(from_file)
    if env_file.is_file():
        merged.update({k: v for k, v in read_env_file(env_file).items() if k in _SPEC})
    merged.update({k: v for k, v in environ.items() if k in _SPEC})
    return Settings(**{name: _parse(name, value) for name, value in merged.items()})
