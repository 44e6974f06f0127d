"""Client messages: decoding, the action they ask for, and validation of their fields.

Every function here either returns well-typed values or raises
:class:`~backend.proxy.errors.RequestError` with the code the client API documents, so the
actions never see a malformed request.

Limits, on purpose:

- :data:`MAX_MESSAGE_BYTES`: larger frames are refused by the WebSocket layer, which closes the
  connection with code 1009 (message too big) before the proxy reads them.
- :data:`MAX_SYMBOLS_PER_REQUEST`: more than an Angel One or Zerodha account holds (9,000), so
  such an account fits in one request and one just past capacity is answered symbol by symbol,
  but a flood is refused whole; a Dhan account (25,000) takes three requests.
- :data:`MAX_NAME_LENGTH`: symbols and exchanges are short; longer strings are refused rather
  than echoed back.
- :data:`MAX_DEPTH` and :data:`MAX_NUMBER_DIGITS`: a message nested deeper, or with a longer
  number, is refused as ``INVALID_JSON`` whatever its fields. No request needs more than three
  levels or a long number; a value nested about a thousand deep cannot be written back into a
  reply, and Python refuses to convert a whole number of more than 4,300 digits.
- :data:`MAX_REQUEST_ID_LENGTH`: a ``request_id``, echoed in every reply, is a string up to that
  long or a finite number; any other is refused.

See ``docs/client-api-limits.md`` for every bound the client API enforces.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from backend.feed import (
    DEPTH,
    DEPTH_LEVELS,
    INVALID_ACTION,
    INVALID_JSON,
    INVALID_MODE,
    INVALID_PARAMETERS,
    LTP,
    MODES,
    QUOTE,
)
from backend.proxy.errors import RequestError

MAX_MESSAGE_BYTES = 2**20
MAX_SYMBOLS_PER_REQUEST = 10_000
MAX_NAME_LENGTH = 64
MAX_DEPTH = 32
MAX_NUMBER_DIGITS = 100
MAX_REQUEST_ID_LENGTH = 256
TOO_DEEP = f"Invalid JSON message: nested more than {MAX_DEPTH} deep"
DEFAULT_MODE = QUOTE
MODE_BY_NAME = {
    "ltp": LTP,
    "quote": QUOTE,
    "depth": DEPTH,
    "1": LTP,
    "2": QUOTE,
    "3": DEPTH,
}

Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Subscribe:
    """A subscribe request: the symbols, in order and without repeats, at one mode."""

    symbols: list[tuple[str, str]]  # (symbol, exchange)
    mode: int
    depth: int


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """An unsubscribe request: each subscription with its own mode."""

    subscriptions: list[tuple[str, str, int]]  # (symbol, exchange, mode)


def decode(frame: str | bytes) -> Message:
    """The JSON object in a text (or UTF-8 binary) frame, within :data:`MAX_DEPTH` and
    :data:`MAX_NUMBER_DIGITS`."""
    try:
        message = json.loads(frame, parse_int=_whole, parse_float=_real)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestError(INVALID_JSON, "Invalid JSON message") from None
    except RecursionError:
        raise RequestError(INVALID_JSON, TOO_DEEP) from None
    if not isinstance(message, dict):
        raise RequestError(INVALID_JSON, "A message must be a JSON object")
    if not _nested_within(message, MAX_DEPTH):
        raise RequestError(INVALID_JSON, TOO_DEEP)
    return message


def _digits(text: str) -> str:
    """``text``, a JSON number, unless it has more than :data:`MAX_NUMBER_DIGITS` digits."""
    if len(text) > MAX_NUMBER_DIGITS and sum(c.isdigit() for c in text) > MAX_NUMBER_DIGITS:
        raise RequestError(
            INVALID_JSON, f"Invalid JSON message: a number of more than {MAX_NUMBER_DIGITS} digits"
        )
    return text


def _whole(text: str) -> int:
    return int(_digits(text))


def _real(text: str) -> float:
    return float(_digits(text))


def _nested_within(value: Any, depth: int) -> bool:
    """Whether no object or array in ``value`` is nested more than ``depth`` deep (``value``
    itself is at depth 1); looks at each one once, level by level."""
    level = [value]
    for _ in range(depth):
        level = [
            child
            for container in level
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, dict | list)
        ]
        if not level:
            return True
    return False


def action_of(message: Message) -> str:
    """The action a message asks for, from ``action`` or else ``type``."""
    action = message.get("action", message.get("type"))
    if action is None:
        raise RequestError(INVALID_ACTION, "Missing action")
    if not isinstance(action, str):
        raise RequestError(INVALID_ACTION, "The action must be a string")
    return action.lower()


def request_id(message: Message) -> str | float | None:
    """The client's ``request_id``, echoed in the reply; :obj:`None` when absent.

    Only a string of at most :data:`MAX_REQUEST_ID_LENGTH` characters or a finite number is
    echoed; any other is refused.
    """
    value = message.get("request_id")
    if (
        value is None
        or (isinstance(value, str) and len(value) <= MAX_REQUEST_ID_LENGTH)
        or (isinstance(value, int | float) and math.isfinite(value))
    ):
        return value
    raise RequestError(
        INVALID_PARAMETERS,
        f"request_id must be a string of at most {MAX_REQUEST_ID_LENGTH} characters or a number",
    )


def parse_mode(value: Any, default: int = DEFAULT_MODE) -> int:
    """A mode given as 1, 2, 3 or ``"LTP"``, ``"Quote"``, ``"Depth"`` in any letter case."""
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool) and value in MODES:
        return value
    if isinstance(value, str) and value.strip().lower() in MODE_BY_NAME:
        return MODE_BY_NAME[value.strip().lower()]
    shown = json.dumps(value)[:40]
    raise RequestError(
        INVALID_MODE, f"Invalid mode {shown}: expected 1, 2, 3 or 'LTP', 'Quote', 'Depth'"
    )


def parse_subscribe(message: Message) -> Subscribe:
    """The symbols, mode and depth of a subscribe request, bulk or single form."""
    mode = parse_mode(message.get("mode"))
    depth = message.get("depth", DEPTH_LEVELS)
    if depth != DEPTH_LEVELS or isinstance(depth, bool):
        raise RequestError(
            INVALID_PARAMETERS, f"depth must be {DEPTH_LEVELS}: the broker sends best five levels"
        )
    entries = _entries(message)
    symbols = [_instrument(entry, where) for where, entry in entries]
    return Subscribe(list(dict.fromkeys(symbols)), mode, depth)


def parse_unsubscribe(message: Message) -> Unsubscribe:
    """The subscriptions of an unsubscribe request; each entry's mode defaults to Quote."""
    default = parse_mode(message.get("mode"))
    subscriptions = [
        (*_instrument(entry, where), parse_mode(entry.get("mode"), default))
        for where, entry in _entries(message)
    ]
    return Unsubscribe(list(dict.fromkeys(subscriptions)))


def parse_set_session(message: Message) -> tuple[str, dict[str, str]]:
    """The account and the settings of a ``set_session`` request (its values never shown)."""
    account = message.get("account")
    settings = message.get("settings")
    if not isinstance(account, str) or not account.strip():
        raise RequestError(INVALID_PARAMETERS, "set_session needs the account's name")
    if not isinstance(settings, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in settings.items()
    ):
        raise RequestError(
            INVALID_PARAMETERS, "set_session needs settings: an object of names to texts"
        )
    return account.strip(), settings


def _entries(message: Message) -> list[tuple[str, Message]]:
    """``(where, entry)`` for each symbol named: the ``symbols`` list, or the message itself."""
    if "symbols" not in message:
        if "symbol" not in message and "exchange" not in message:
            raise RequestError(
                INVALID_PARAMETERS,
                "Give symbols, a list of {symbol, exchange}, or symbol and exchange",
            )
        return [("", message)]
    symbols = message["symbols"]
    if not isinstance(symbols, list) or not symbols:
        raise RequestError(INVALID_PARAMETERS, "symbols must be a non-empty list")
    if len(symbols) > MAX_SYMBOLS_PER_REQUEST:
        raise RequestError(
            INVALID_PARAMETERS,
            f"Too many symbols: {len(symbols)} in one request, at most {MAX_SYMBOLS_PER_REQUEST}",
        )
    for index, entry in enumerate(symbols):
        if not isinstance(entry, dict):
            raise RequestError(INVALID_PARAMETERS, f"symbols[{index}] must be an object")
    return [(f"symbols[{index}].", entry) for index, entry in enumerate(symbols)]


def _instrument(entry: Message, where: str) -> tuple[str, str]:
    return _name(entry, "symbol", where), _name(entry, "exchange", where)


def _name(entry: Message, field: str, where: str) -> str:
    value = entry.get(field)
    if not isinstance(value, str) or not value.strip():
        raise RequestError(INVALID_PARAMETERS, f"{where}{field} must be a non-empty string")
    if len(value) > MAX_NAME_LENGTH:
        raise RequestError(
            INVALID_PARAMETERS, f"{where}{field} is longer than {MAX_NAME_LENGTH} characters"
        )
    return value
