"""FeedPool's settings: one frozen :class:`Settings`, read from four layers.

Later layers win: built-in defaults < ``settings.json`` in the user config dir < the OS
keychain (:mod:`backend.security.keychain`, secrets only) < a ``.env`` file in the working
directory < the process environment. Every value is validated while loading; a bad one
raises :class:`SettingsError` naming the setting, the value and what is allowed, so the backend can
refuse to start with one clear line instead of failing later. So does a settings file that cannot
be read (:class:`SettingsFileError`: not UTF-8, not a JSON object, nested too deeply) or that
names no setting (:class:`UnknownSettingError`, with the likeliest setting meant). An error shows
the value of a known, non-secret setting only: never a secret's, an unknown name's (perhaps a
misspelled secret) or a JSON object's or array's.

Each broker's own settings (its credentials and URL) come from its package's description in
:data:`backend.brokers.BROKERS`. Credentials are held as :class:`Secret`, whose ``str`` and
``repr`` are masked, so a settings object can be logged or shown in an error without leaking them.

The pool's limits default to the broker's real ones (:attr:`Settings.max_symbols_per_connection`,
:attr:`Settings.max_connections`); the ``MAX_*`` settings may change them.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from backend.brokers import BROKERS, Broker
from backend.runtime.accounts import (
    AccountSettings,
    keychain_name,
    parse_accounts,
    raw_accounts,
    simulated_accounts,
)
from backend.security import keychain
from backend.security.secret import Secret

APP_NAME = "FeedPool"
SETTINGS_FILE_NAME = "settings.json"
SIMULATOR = "simulator"
#: ``BROKER=accounts``: the real brokers' accounts listed in ``ACCOUNTS``.
ACCOUNTS = "accounts"
#: ``WEBSOCKET_TLS``: plain ``ws://``; ``wss://`` with the given files; ``wss://`` with the given
#: files or a generated self-signed certificate.
TLS_OFF, TLS_ON, TLS_AUTO = "off", "on", "auto"
#: ``BUS_CURVE``: the bus in the clear, or encrypted with CURVE for allowed client keys only.
CURVE_OFF, CURVE_ON = "off", "on"


#: The longest value an error shows whole; a longer one is cut short.
SHOWN_CHARACTERS = 60
#: The most digits of a whole number in ``settings.json``, far more than any setting takes.
MAX_DIGITS = 100


class SettingsError(ValueError):
    """A setting has a value FeedPool cannot use; ``name`` names it (or the file).

    The message shows the value only where it helps and cannot leak a credential (see
    :func:`_shown`).
    """

    def __init__(self, name: str, value: object, allowed: str) -> None:
        super().__init__(f"invalid setting {name}{_shown(name, value)}: {allowed}")
        self.name = name


class UnknownSettingError(SettingsError):
    """A name that is no setting. Its value is never shown: it may be a misspelled secret's."""

    def __init__(self, name: str, where: Path | None = None) -> None:
        place = f" in {where}" if where else ""
        ValueError.__init__(self, f"unknown setting {name}{place} ({_suggestion(name)})")
        self.name = name


class SettingsFileError(SettingsError):
    """A settings file (``settings.json`` or ``.env``) that cannot be read as one."""

    def __init__(self, path: Path, problem: str) -> None:
        ValueError.__init__(self, f"cannot use the settings file {path}: {problem}")
        self.name = str(path)


def _shown(name: str, value: object) -> str:
    """``=value`` as an error about ``name`` shows it: ``=***`` for a secret, and nothing for a
    name that is no setting or a JSON object or array, where a credential may hide. Only a
    known, non-secret setting's value is shown, cut to :data:`SHOWN_CHARACTERS`."""
    if name in SECRET_SETTINGS:
        return "=***"
    if name not in _SPEC or isinstance(value, dict | list):
        return ""
    shown = repr(value)
    return f"={shown[:SHOWN_CHARACTERS]}..." if len(shown) > SHOWN_CHARACTERS else f"={shown}"


def _suggestion(name: str) -> str:
    """The setting ``name`` is likely a misspelling of; else every setting's name."""
    close = difflib.get_close_matches(name.upper(), _SPEC, n=1)
    return f"did you mean {close[0]}?" if close else f"known settings: {', '.join(_SPEC)}"


def config_dir() -> Path:
    """The user config dir: settings, the local API key, the client API's generated TLS
    certificate (``tls/``) and the bus's CURVE keys (``bus/``) live here."""
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


def _limit(high: int) -> Callable[[str, str], int]:
    """A whole number from 1 to ``high``, or empty (:obj:`None`) for the broker's own limit."""
    bounded = _integer(1, high)

    def parse(name: str, text: str) -> int | None:
        if not str(text).strip():
            return None
        try:
            return bounded(name, text)
        except SettingsError:
            raise SettingsError(
                name,
                text,
                f"expected a whole number from 1 to {high}, or empty for the broker's own limit",
            ) from None

    return parse


def _url(name: str, text: str) -> str:
    value = str(text).strip()
    if value and not value.startswith(("ws://", "wss://")):
        raise SettingsError(name, text, "expected a ws:// or wss:// URL, or empty for the default")
    return value


def _web(name: str, text: str) -> str:
    value = str(text).strip()
    if value and not value.startswith(("http://", "https://")):
        raise SettingsError(
            name, text, "expected an http:// or https:// URL, or empty for the default"
        )
    return value


def _text(name: str, text: str) -> str:
    return str(text).strip()


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def _flag(name: str, text: str) -> bool:
    value = str(text).strip().lower()
    if value not in _TRUE + _FALSE:
        raise SettingsError(name, text, "expected 1 or 0 (true or false)")
    return value in _TRUE


def _secret(name: str, text: str) -> Secret:
    return Secret(str(text).strip())


def _brokers(name: str, text: str) -> str:
    names = tuple(b.strip().lower() for b in str(text).split(",") if b.strip())
    unknown = [b for b in names if b not in BROKERS]
    if unknown:
        allowed = f"expected broker names separated by commas, each one of {', '.join(BROKERS)}"
        raise SettingsError(name, text, allowed)
    return ",".join(names)


def _accounts(name: str, value: object) -> tuple[AccountSettings, ...]:
    """``ACCOUNTS`` (see :mod:`backend.runtime.accounts`); its value is never shown in an error,
    as it holds credentials."""

    def fail(problem: str) -> SettingsError:
        return SettingsError(name, [], problem)

    if isinstance(value, tuple):  # already parsed (Settings.replace)
        return value
    return parse_accounts(raw_accounts(value, fail), _parse, fail)


_PORT = _integer(1, 65535)
_PORT_OR_ZERO = _integer(0, 65535)

_PARSERS = {"text": _text, "secret": _secret, "url": _url, "web": _web}

# name -> (default, parser). The names are the keys in every layer.
_CORE_SPEC: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "MAX_SYMBOLS_PER_WEBSOCKET": ("", _limit(100_000)),
    "MAX_WEBSOCKET_CONNECTIONS": ("", _limit(100)),
    "ZMQ_HOST": ("127.0.0.1", _host),
    "ZMQ_PORT": ("5555", _PORT_OR_ZERO),
    "WEBSOCKET_HOST": ("127.0.0.1", _host),
    "WEBSOCKET_PORT": ("8765", _PORT_OR_ZERO),
    "WEBSOCKET_TLS": (TLS_OFF, _choice(TLS_OFF, TLS_ON, TLS_AUTO)),
    "WEBSOCKET_TLS_CERT": ("", _text),
    "WEBSOCKET_TLS_KEY": ("", _text),
    "BUS_CURVE": (CURVE_OFF, _choice(CURVE_OFF, CURVE_ON)),
    "ALLOW_INSECURE_REMOTE": ("0", _flag),
    "BROKER": (SIMULATOR, _choice(SIMULATOR, *BROKERS, ACCOUNTS)),
    "ACCOUNTS": ("", _accounts),
    "SIMULATOR_BROKER": ("angel", _choice(*BROKERS)),
    "SIMULATOR_ACCOUNTS": ("", _brokers),
    "FAILOVER_SECONDS": ("5", _number(0.5, 3600.0)),
    "BROKER_USER_ID": ("", _text),
    "INSTRUMENT_MASTER": ("", _text),
    "SIMULATOR_TICKS_PER_SECOND": ("1.0", _number(0.0, 1000.0)),
    "SIMULATOR_SEED": ("", _text),
    "WS_MIN_INTERVAL_MS": ("0", _integer(0, 60_000)),
    "MAX_CLIENTS_PER_ADDRESS": ("64", _integer(1, 100_000)),
    "AUTH_FAILURES_BEFORE_DELAY": ("5", _integer(1, 1_000_000)),
    "STALE_FEED_SECONDS": ("30", _number(0.0, 3600.0)),
    "FEEDPOOL_API_KEY": ("", _secret),
}
_BROKER_SPEC = {
    setting.name: (setting.default, _PARSERS[setting.kind])
    for broker in BROKERS.values()
    for setting in broker.settings
}
_SPEC = {**_CORE_SPEC, **_BROKER_SPEC}

SECRET_SETTINGS = frozenset(name for name, (_, parse) in _SPEC.items() if parse is _secret)


@dataclass(frozen=True)
class Settings:
    """Every pool, bus and broker setting, validated. Names are the settings' names.

    The core settings are fields; each broker's settings (``ANGEL_CLIENT_CODE``, ...) are read
    as attributes too, from :attr:`broker_values`.
    """

    #: Symbols per pooled connection and pooled connections; None: the broker's real limit.
    MAX_SYMBOLS_PER_WEBSOCKET: int | None = None
    MAX_WEBSOCKET_CONNECTIONS: int | None = None
    ZMQ_HOST: str = "127.0.0.1"
    ZMQ_PORT: int = 5555
    WEBSOCKET_HOST: str = "127.0.0.1"
    WEBSOCKET_PORT: int = 8765
    #: The client API over TLS (``wss://``): off, on (with the two files below) or auto (the
    #: files if set, else a self-signed certificate generated in the user config dir).
    WEBSOCKET_TLS: str = TLS_OFF
    #: PEM files: the client API's certificate (chain) and its private key.
    WEBSOCKET_TLS_CERT: str = ""
    WEBSOCKET_TLS_KEY: str = ""
    #: The bus encrypted with CURVE, for the client keys allowed in the user config dir only.
    BUS_CURVE: str = CURVE_OFF
    #: Serve the client API or the bus off loopback without TLS or CURVE all the same.
    ALLOW_INSECURE_REMOTE: bool = False
    BROKER: str = SIMULATOR
    #: The broker accounts, in the trader's order (:mod:`backend.runtime.accounts`).
    ACCOUNTS: tuple[AccountSettings, ...] = ()
    #: The broker whose protocol the bundled simulator speaks when ``BROKER=simulator``.
    SIMULATOR_BROKER: str = "angel"
    #: Without ``ACCOUNTS``, the simulator plays one account of each broker named here.
    SIMULATOR_ACCOUNTS: str = ""
    #: With several accounts, a connection down this long has its symbols moved to another.
    FAILOVER_SECONDS: float = 5.0
    #: Who the pool belongs to; defaults to what the broker's credentials say.
    BROKER_USER_ID: str = ""
    #: The instrument master: a file or an http(s):// URL in the broker's format; with the
    #: simulator, a CSV in the bundled format. Empty: the broker's published master.
    INSTRUMENT_MASTER: str = ""
    SIMULATOR_TICKS_PER_SECOND: float = 1.0
    SIMULATOR_SEED: str = ""
    #: Per client, at most one update per symbol and mode in this many ms (the newest); 0: off.
    WS_MIN_INTERVAL_MS: int = 0
    #: Client API connections open at once from one address (127.0.0.1 too); past it, refused.
    MAX_CLIENTS_PER_ADDRESS: int = 64
    #: Wrong API keys from one address before its authentications wait, longer each time.
    AUTH_FAILURES_BEFORE_DELAY: int = 5
    #: A connection that was ticking and gets no tick for this long while holding symbols is
    #: healed (subscribed again, then reconnected); 0: never.
    STALE_FEED_SECONDS: float = 30.0
    #: The key clients authenticate with; empty: the generated key kept in the user config dir.
    FEEDPOOL_API_KEY: Secret = field(default_factory=lambda: Secret(""))
    #: Every broker's own settings, by name.
    broker_values: Mapping[str, Any] = field(
        default_factory=lambda: {name: _parse(name, d) for name, (d, _) in _BROKER_SPEC.items()}
    )

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("broker_values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"{type(self).__name__!r} has no setting {name!r}")

    @property
    def broker(self) -> Broker:
        """The broker whose protocol the (first account's) pool speaks: the simulator plays
        SIMULATOR_BROKER."""
        if self.ACCOUNTS or self.BROKER == ACCOUNTS or self.SIMULATOR_ACCOUNTS:
            return self.accounts[0].broker
        return BROKERS[self.SIMULATOR_BROKER if self.BROKER == SIMULATOR else self.BROKER]

    @property
    def accounts(self) -> tuple[AccountSettings, ...]:
        """The broker accounts to pool, in the trader's order: ``ACCOUNTS``; with the simulator
        and no ``ACCOUNTS``, one per broker of ``SIMULATOR_ACCOUNTS``; else the one account of
        ``BROKER`` and its settings."""
        if self.ACCOUNTS:
            return self.ACCOUNTS
        if self.BROKER == ACCOUNTS:
            raise SettingsError("ACCOUNTS", [], "required when BROKER=accounts: list the accounts")
        if self.BROKER == SIMULATOR and self.SIMULATOR_ACCOUNTS:
            entries = simulated_accounts(self.SIMULATOR_ACCOUNTS)
            return _accounts("SIMULATOR_ACCOUNTS", entries)
        broker = BROKERS[self.SIMULATOR_BROKER if self.BROKER == SIMULATOR else self.BROKER]
        return (
            AccountSettings(
                broker.name,
                broker,
                self.broker_values,
                self.MAX_SYMBOLS_PER_WEBSOCKET,
                self.MAX_WEBSOCKET_CONNECTIONS,
                self.BROKER_USER_ID,
                self.INSTRUMENT_MASTER,
            ),
        )

    @property
    def max_symbols_per_connection(self) -> int:
        return self.MAX_SYMBOLS_PER_WEBSOCKET or self.broker.max_symbols

    @property
    def max_connections(self) -> int:
        return self.MAX_WEBSOCKET_CONNECTIONS or self.broker.max_connections

    @property
    def capacity(self) -> int:
        """Symbols the pool may hold: connections times symbols per connection."""
        return self.max_symbols_per_connection * self.max_connections

    def over_broker_limits(self) -> list[str]:
        """A sentence for each ``MAX_*`` setting above the broker's real limit."""
        broker = self.broker
        return [
            f"{name}={value} is more than {broker.label} allows ({limit}); "
            "the broker will refuse what is over"
            for name, value, limit in (
                ("MAX_SYMBOLS_PER_WEBSOCKET", self.MAX_SYMBOLS_PER_WEBSOCKET, broker.max_symbols),
                (
                    "MAX_WEBSOCKET_CONNECTIONS",
                    self.MAX_WEBSOCKET_CONNECTIONS,
                    broker.max_connections,
                ),
            )
            if value is not None and value > limit
        ]

    def check_credentials(self, before_login: bool = False) -> None:
        """:class:`SettingsError` naming the first credential a real broker account needs and
        lacks; ``before_login``, not those the broker's browser login saves."""
        if self.BROKER == SIMULATOR:
            return
        for account in self.accounts:
            broker, values = account.broker, account.values
            for setting in broker.settings:
                if not setting.required or values[setting.name]:
                    continue
                if setting.required_unless and all(values[n] for n in setting.required_unless):
                    continue
                if setting.from_login and before_login:
                    continue
                if self.BROKER == ACCOUNTS:
                    reason = f"required for account {account.name!r} ({broker.label})"
                else:
                    reason = f"required when BROKER={self.BROKER}"
                if setting.required_unless:
                    reason += f" unless {' and '.join(setting.required_unless)} are set"
                if setting.from_login:
                    reason += f": log in to {broker.label} (File > Log in to {broker.label})"
                raise SettingsError(setting.name, "", reason)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed, each validated like a loaded value."""
        return _build({**self.values(), **changes})

    def values(self) -> dict[str, Any]:
        """Every setting by name."""
        core = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del core["broker_values"]
        return {**core, **self.broker_values}


def _build(values: Mapping[str, object]) -> Settings:
    parsed = {name: _parse(name, value) for name, value in values.items()}
    broker_values = {name: parsed.pop(name) for name in _BROKER_SPEC if name in parsed}
    defaults = Settings().broker_values
    return Settings(**parsed, broker_values={**defaults, **broker_values})


class _Null(str):
    """No value (a ``null`` in ``settings.json``): parsed as empty, shown as ``null``."""

    def __repr__(self) -> str:
        return "null"


def _parse(name: str, value: object) -> Any:
    if name not in _SPEC:
        raise UnknownSettingError(name)
    if name == "ACCOUNTS":
        return _accounts(name, "" if value is None else value)
    if isinstance(value, dict | list):
        kind = "object" if isinstance(value, dict) else "array"
        raise SettingsError(name, value, f"expected text, a number or true/false, not JSON {kind}")
    if isinstance(value, Secret):
        value = value.reveal()
    return _SPEC[name][1](name, _Null() if value is None else str(value))


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a ``.env`` file; blank lines, comments and ``export`` are allowed."""
    values: dict[str, str] = {}
    for number, raw in enumerate(_text_of(path).splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            # The line itself is not shown: it may be a secret's.
            raise SettingsFileError(path, f"line {number} is not KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def read_settings_file(path: Path) -> dict[str, str]:
    """The JSON object in ``settings.json``: setting names to values; :class:`SettingsFileError`
    for a file that is no such object, whatever is wrong with it."""
    expected = 'expected a JSON object of settings, such as {"BROKER": "simulator"}'
    text = _text_of(path)
    try:
        loaded = json.loads(text, parse_int=_whole_number)
    except json.JSONDecodeError as exc:
        raise SettingsFileError(path, f"it is not JSON ({exc}); {expected}") from None
    except RecursionError:
        raise SettingsFileError(path, f"it is nested too deeply; {expected}") from None
    except ValueError as exc:  # from _whole_number
        raise SettingsFileError(path, f"{exc}; {expected}") from None
    if not isinstance(loaded, dict):
        raise SettingsFileError(path, expected)
    return {str(key): value for key, value in loaded.items()}


def _whole_number(digits: str) -> int:
    """A JSON whole number, refused past :data:`MAX_DIGITS` (Python's own limit is an error
    that advises raising it)."""
    count = len(digits.lstrip("-"))
    if count > MAX_DIGITS:
        raise ValueError(f"it holds a number of {count} digits")
    return int(digits)


def _text_of(path: Path) -> str:
    """The UTF-8 text of the settings file ``path``, or :class:`SettingsFileError` saying why
    it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsFileError(
            path,
            f"it is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "save it as UTF-8",
        ) from None
    except OSError as exc:
        raise SettingsFileError(path, f"it cannot be read ({exc.strerror or exc})") from None


def load_settings(
    environ: Mapping[str, str] | None = None,
    settings_file: Path | None = None,
    env_file: Path | None = None,
) -> Settings:
    """Settings from defaults < settings file < keychain < ``.env`` < environment.

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
                raise UnknownSettingError(name, settings_file)
        merged.update(from_file)
    merged.update(keychain.read(sorted(SECRET_SETTINGS)))
    merged["ACCOUNTS"] = with_kept_secrets(merged["ACCOUNTS"])
    if env_file.is_file():
        merged.update({k: v for k, v in read_env_file(env_file).items() if k in _SPEC})
    merged.update({k: v for k, v in environ.items() if k in _SPEC})
    return _build(merged)


def with_kept_secrets(value: object) -> object:
    """``ACCOUNTS`` with each account's secrets the keychain keeps (under
    :func:`~backend.runtime.accounts.keychain_name`) where the account does not give them."""

    def fail(problem: str) -> SettingsError:
        return SettingsError("ACCOUNTS", [], problem)

    entries = raw_accounts(value, fail)
    wanted = {
        keychain_name(str(entry.get("name", "")).strip(), setting.name): (entry, setting.name)
        for entry in entries
        for broker in [BROKERS.get(str(entry.get("broker", "")).strip().lower())]
        if broker is not None
        for setting in broker.settings
        if setting.kind == "secret" and setting.name not in entry
    }
    for key, secret in keychain.read(sorted(wanted)).items():
        entry, name = wanted[key]
        entry[name] = secret
    return entries
