"""What FeedPool knows of one broker: a :class:`Broker`, each broker package's ``BROKER``.

The rest of FeedPool reaches a broker only through this description: its real limits, the
settings that hold its credentials, how it connects, where its instrument master is published and
how that master reads. The bundled exchange simulator uses the same description to play the
broker, so whatever works against the simulator runs the same code against the real one; how it
speaks the broker's protocol is the package's :class:`~backend.simulator.dialect.Dialect`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from backend.brokers.adapter import BrokerAdapter
from backend.brokers.session import BrokerSession
from backend.instruments.master import Instrument

if TYPE_CHECKING:
    from backend.simulator.dialect import Dialect


@dataclass(frozen=True, slots=True)
class BrokerSetting:
    """One setting of a broker: a credential (``secret``), a name (``text``), a WebSocket
    ``url`` or a ``web`` address (http or https)."""

    name: str
    label: str
    kind: str = "text"
    default: str = ""
    #: Whether the broker cannot be used without it...
    required: bool = True
    #: ... unless every one of these settings is set.
    required_unless: tuple[str, ...] = ()
    #: The broker's browser login saves it (the day's token): the settings may be saved
    #: without it, and the backend asks for the login.
    from_login: bool = False


#: Builds a pooled connection: ``(index, url, credentials, **options)``.
AdapterFactory = Callable[..., BrokerAdapter]


@dataclass(frozen=True, slots=True)
class LoginResult:
    """What a browser login gives: the settings to save (the day's token) and who logged in."""

    saved: dict[str, str]
    user_id: str


@dataclass(frozen=True, slots=True)
class BrowserLogin:
    """A login the trader completes in the browser, which the broker then redirects to the
    redirect URL of the trader's broker app, on this machine (the app catches it) or pasted.

    ``values`` are the current settings, ``{setting name: value}``.
    """

    #: The setting holding the redirect URL the broker's app is registered with.
    redirect_setting: str
    #: The settings the login needs before it starts, e.g. the app's API key and secret.
    required: tuple[str, ...]
    #: ``page(values)``: the login page to open, after what the broker asks first (if anything).
    page: Callable[[Mapping[str, Any]], Awaitable[str]]
    #: ``finish(values, redirect)``: the session traded for the redirect URL the browser reached.
    finish: Callable[[Mapping[str, Any], str], Awaitable[LoginResult]]


@dataclass(frozen=True, slots=True)
class Broker:
    """One broker FeedPool can pool, as its package describes it."""

    #: The ``BROKER`` setting's value, e.g. ``angel``.
    name: str
    #: The name shown to people, e.g. ``Angel One``.
    label: str
    #: The broker's real limits: market-data connections per account, symbols per connection.
    max_connections: int
    max_symbols: int
    #: Its credential settings and the setting holding its WebSocket URL.
    settings: tuple[BrokerSetting, ...]
    url_setting: str
    #: ``session(values)``: the account's session from ``{setting name: value}``: a login
    #: with the stored credentials, or the tokens pasted into the settings.
    session: Callable[[Mapping[str, Any]], BrokerSession]
    #: ``simulator_settings(account, rest)``: the settings that log in to the bundled
    #: simulator's account, whose REST root is ``rest``, as the real broker's are logged in to.
    simulator_settings: Callable[[Any, str], dict[str, str]]
    #: Fixed credentials of the simulator's account (its default tokens), for a connection
    #: opened without a session.
    simulator_credentials: Callable[[Any], Any]
    #: Who the account is, from its session: shown in statistics.
    user_id: Callable[[BrokerSession], str]
    adapter: AdapterFactory
    #: ``check(url, credentials)``: open one connection and close it; raises what connect does.
    check: Callable[[str, Any], Any]
    #: Where the broker publishes its instrument master, and the path of that URL.
    master_url: str
    master_path: str
    #: ``read_master(data, source)``: the instruments of a downloaded master.
    read_master: Callable[[bytes, str], list[Instrument]]
    #: ``write_master(instruments)``: a master in the broker's format (the simulator serves it).
    write_master: Callable[[Iterable[Instrument]], bytes]
    #: ``simulator_dialect()``: how the bundled simulator plays the broker. A function, so that
    #: the simulator's modules (its numpy market among them) load only when a simulator is made,
    #: and the registry does not import the simulator, which imports the registry.
    simulator_dialect: Callable[[], Dialect]
    #: Where the master is published in several files (one per exchange): their names, beside
    #: ``master_url`` (the first of them). They are downloaded together and kept as one zip
    #: holding each under its name, which ``read_master`` reads; empty for one file.
    master_files: tuple[str, ...] = ()
    #: The login in the browser that gives the day's session, for a broker without an
    #: unattended one (the desktop offers it in its File menu); None where the stored
    #: credentials log in by themselves.
    browser_login: BrowserLogin | None = None
