"""The broker accounts the backend pools: ``ACCOUNTS``, or the one account of today's settings.

``ACCOUNTS`` is an ordered list of accounts in ``settings.json`` (a JSON text of the same list in
the environment or ``.env``), each an object with the ``name`` the trader gives it, its
``broker`` and that broker's settings under their own names (``ANGEL_CLIENT_CODE``,
``KITE_API_KEY``, ...), and optionally ``MAX_SYMBOLS_PER_WEBSOCKET``,
``MAX_WEBSOCKET_CONNECTIONS`` (limits below the broker's), ``BROKER_USER_ID`` and
``INSTRUMENT_MASTER``::

    {"BROKER": "accounts", "ACCOUNTS": [
        {"name": "angel-main", "broker": "angel", "ANGEL_CLIENT_CODE": "A123"},
        {"name": "kite", "broker": "zerodha", "KITE_API_KEY": "...", "KITE_USER_ID": "AB1234"}]}

The order is the placement preference. An account's secrets are kept in the OS keychain under
``<name>/<SETTING>`` (:func:`keychain_name`). With ``BROKER=accounts`` the accounts are the real
brokers'; with ``BROKER=simulator`` the bundled simulator plays each of them (one simulator
process per account), or, without ``ACCOUNTS``, one account per broker named in
``SIMULATOR_ACCOUNTS`` (``angel,zerodha``). Without either, the single account of ``BROKER`` and
its settings is the only one, exactly as before accounts existed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from backend.brokers import BROKERS, Broker

#: The settings an account may set besides its broker's own.
ACCOUNT_LIMITS = (
    "MAX_SYMBOLS_PER_WEBSOCKET",
    "MAX_WEBSOCKET_CONNECTIONS",
    "BROKER_USER_ID",
    "INSTRUMENT_MASTER",
)
#: What an account's name may be: it names the account in logs, statistics and the keychain.
NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,39}")
NAME_TEXT = (
    "1 to 40 letters, digits, spaces, dots, dashes or underscores, starting with a letter or digit"
)
MAX_ACCOUNTS = 16


@dataclass(frozen=True, slots=True)
class AccountSettings:
    """One broker account: its name, its broker, its settings and its limits."""

    name: str
    broker: Broker = field(repr=False)
    #: The broker's settings for this account, parsed (secrets as ``Secret``), by name.
    values: Mapping[str, Any] = field(repr=False)
    #: Limits below the broker's, or None for the broker's own.
    max_symbols: int | None = None
    max_connections: int | None = None
    user_id: str = ""
    #: The account's instrument master (a file or URL), instead of its broker's published one.
    master: str = ""

    @property
    def max_symbols_per_connection(self) -> int:
        return self.max_symbols or self.broker.max_symbols

    @property
    def connections(self) -> int:
        return self.max_connections or self.broker.max_connections


def keychain_name(account: str, setting: str) -> str:
    """Where the keychain keeps ``account``'s secret ``setting``."""
    return f"{account}/{setting}"


def raw_accounts(value: object, fail: Callable[[str], Exception]) -> list[dict[str, object]]:
    """The list of account objects ``ACCOUNTS`` holds: a JSON list, or its text (empty: none).
    ``fail(problem)`` is raised for anything else."""
    if isinstance(value, str):
        if not value.strip():
            return []
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            raise fail("expected a JSON list of account objects") from None
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise fail("expected a list of account objects, each with a name and a broker")
    if len(value) > MAX_ACCOUNTS:
        raise fail(f"expected at most {MAX_ACCOUNTS} accounts, not {len(value)}")
    return value


def parse_accounts(
    entries: list[dict[str, object]],
    parse: Callable[[str, object], Any],
    fail: Callable[[str], Exception],
) -> tuple[AccountSettings, ...]:
    """The accounts of ``entries``; each setting parsed with ``parse(name, value)``, whose errors
    are raised as they are (naming the setting), prefixed by the account. ``fail(problem)`` is
    raised for an entry that is no account."""
    accounts: list[AccountSettings] = []
    for number, entry in enumerate(entries, start=1):
        name = str(entry.get("name", "")).strip()
        which = f"account {number}" + (f" ({name!r})" if name else "")
        if not NAME_RULE.fullmatch(name):
            raise fail(f"{which}: its name must be {NAME_TEXT}")
        if any(a.name.lower() == name.lower() for a in accounts):
            raise fail(f"{which}: another account has that name")
        broker = BROKERS.get(str(entry.get("broker", "")).strip().lower())
        if broker is None:
            raise fail(f"{which}: its broker must be one of {', '.join(BROKERS)}")
        own = {s.name for s in broker.settings}
        values: dict[str, Any] = {s.name: parse(s.name, s.default) for s in broker.settings}
        limits: dict[str, Any] = {}
        for key, value in entry.items():
            if key in ("name", "broker"):
                continue
            if key not in own and key not in ACCOUNT_LIMITS:
                raise fail(f"{which}: {key} is no setting of {broker.label} or of an account")
            try:
                parsed = parse(key, value)
            except ValueError as exc:
                raise fail(f"{which}: {exc}") from None
            (values if key in own else limits)[key] = parsed
        accounts.append(
            AccountSettings(
                name,
                broker,
                values,
                limits.get("MAX_SYMBOLS_PER_WEBSOCKET"),
                limits.get("MAX_WEBSOCKET_CONNECTIONS"),
                limits.get("BROKER_USER_ID", ""),
                limits.get("INSTRUMENT_MASTER", ""),
            )
        )
    return tuple(accounts)


def simulated_accounts(brokers: str) -> list[dict[str, object]]:
    """The accounts ``SIMULATOR_ACCOUNTS`` names (``angel,zerodha``), each named after its
    broker (``angel``, ``angel-2`` for a second)."""
    entries: list[dict[str, object]] = []
    for broker in (b.strip().lower() for b in brokers.split(",") if b.strip()):
        taken = sum(e["broker"] == broker for e in entries)
        entries.append({"name": broker if not taken else f"{broker}-{taken + 1}", "broker": broker})
    return entries
