"""``python -m backend.bus.document > docs/bus.md``: the bus's reference, rendered from its types.

:func:`render` writes ``docs/bus.md`` from :mod:`backend.bus.messages`: which type each topic
carries and, for each type, its fields with their JSON types and descriptions (the
:class:`msgspec.Meta` of each field), then the lines the backend prints on stdout. A test fails when
the file differs from what the types render.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
import typing
from collections.abc import Iterator

from msgspec import Meta, Struct
from msgspec.structs import fields

from backend.bus.messages import SYSTEM_TYPES, TICK_TYPES, BackendLine
from backend.feed import EXCHANGES, tick_topic

COMMAND = "python -m backend.bus.document > docs/bus.md"
JSON_NAMES = {int: "integer", float: "number", str: "string", bool: "boolean", type(None): "null"}
#: A Sphinx role (``:class:`~a.b.C```) or an inline literal (````x````) of a docstring.
ROLE = re.compile(r":\w+:`~?([^`]+)`")
LITERAL = re.compile(r"``([^`]+)``")

INTRODUCTION = f"""\
# The bus

<!-- Rendered from backend/bus/messages.py by `{COMMAND}`: edit the types, not this file. -->

The backend publishes every tick and every monitoring record on one ZeroMQ XPUB socket, at the
ready line's `zmq` endpoint (`ZMQ_HOST`, `ZMQ_PORT`). Subscribers connect with a SUB socket and
subscribe to topic prefixes.

- **Frames.** Each message is two frames: the topic (UTF-8), then the payload, one JSON object
  (UTF-8). The field names and types are below; a reader should ignore fields it does not know, as
  FeedPool's own readers do, since new ones may be added.
- **Monitoring topics** begin with `SYS.`: subscribe to `SYS.` for all of them.
- **Tick topics** are `{{EXCHANGE}}_{{SYMBOL}}_{{MODE}}` (`backend.feed.tick_topic`), the mode
  one of `LTP`, `QUOTE`, `DEPTH`, e.g. `{tick_topic("NSE", "SBIN", 2)}`. A symbol's ticks go out on
  one topic, that of the highest mode the pool holds it in: subscribe to `NSE_SBIN_` for them
  whatever the mode. The backend sends an outside subscriber only the topics it subscribed to.
  No exchange contains a dot, so `SYS.` prefixes no tick topic. The exchanges:
  {", ".join(f"`{exchange}`" for exchange in EXCHANGES)}.
- **Encoding.** Prices are rupees, `integer` fields are whole numbers, `number` fields may have a
  fraction. Monitoring messages are encoded with msgspec from the types in
  `backend/bus/messages.py`; ticks with orjson from dicts of the same fields.
- **CURVE.** With `BUS_CURVE=on` the bus is encrypted and lets in only allowed subscriber keys (see
  [architecture.md](architecture.md#the-zeromq-bus)).
- **Changed with the typed messages (issue 19).** The backend's `SYS.HEALTH` always has `ws`
  (`null` if the client API never listened; it used to be left out), and the stdout lines are
  compact JSON in UTF-8 (they had spaces after separators and escaped non-ASCII). No other name
  or value changed.

In Python, `backend.bus.messages.decode` checks a message against its topic's type:

```python
topic, payload = subscriber.recv_multipart()
message = decode(topic.decode(), payload)  # MalformedMessage names the field that does not match
```
"""

STDOUT = """\
## The backend's stdout

`python -m backend` prints JSON lines on stdout, each an object whose `event` tells its type, and
nothing else: one ready line once everything listens, or one error line before it exits. With
`--allow-bus-client NAME` it prints one `bus_client` line. `backend.bus.messages.decode_line`
reads them.
"""


def _markdown(docstring: str) -> str:
    """A docstring as one markdown paragraph: roles and literals become code spans."""
    text = " ".join(inspect.cleandoc(docstring).split())
    return LITERAL.sub(r"`\1`", ROLE.sub(lambda match: f"`{match[1]}`", text))


def _anchor(kind: type) -> str:
    return f"[{kind.__name__}](#{kind.__name__.lower()})"


def _members(kind: object) -> tuple:
    """The types of a union, or the one type."""
    return typing.get_args(kind) if isinstance(kind, types.UnionType) else (kind,)


def _json_type(kind: object) -> str:
    """How a field's type reads in JSON terms, linking the message types."""
    origin, arguments = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Annotated:
        return _json_type(arguments[0])
    if isinstance(kind, types.UnionType):
        return " or ".join(_json_type(member) for member in arguments)
    if origin is list:
        return f"array of {_json_type(arguments[0])}"
    if origin is tuple:
        return "[" + ", ".join(_json_type(argument) for argument in arguments) + "]"
    if isinstance(kind, type) and issubclass(kind, Struct):
        return _anchor(kind)
    return JSON_NAMES[kind]


def _description(kind: object) -> str:
    meta = [m for m in typing.get_args(kind)[1:] if isinstance(m, Meta)]
    return meta[0].description if meta else ""


def _nested(kind: object) -> Iterator[type]:
    """The message types inside a field's type."""
    if isinstance(kind, type) and issubclass(kind, Struct):
        yield kind
    for argument in typing.get_args(kind):
        yield from _nested(argument)


def _in_order(roots: list[type]) -> list[type]:
    """``roots`` and every type inside them, each once, each followed by those it holds."""
    found: list[type] = []

    def visit(kind: type) -> None:
        if kind not in found:
            found.append(kind)
            for field in fields(kind):
                for inner in _nested(field.type):
                    visit(inner)

    for root in roots:
        visit(root)
    return found


def _section(kind: type) -> str:
    """A type's heading, docstring and table of fields."""
    rows = ["| Field | Type | Description |", "| --- | --- | --- |"]
    config = kind.__struct_config__
    if config.tag is not None:
        rows.append(
            f'| `{config.tag_field}` | `"{config.tag}"` | Which message this is: always '
            f'`"{config.tag}"` for this one. |'
        )
    for field in fields(kind):
        rows.append(f"| `{field.name}` | {_json_type(field.type)} | {_description(field.type)} |")
    return f"### {kind.__name__}\n\n{_markdown(kind.__doc__)}\n\n" + "\n".join(rows) + "\n"


def render() -> str:
    """``docs/bus.md``."""
    topics = [
        *((f"`{topic}`", kind) for topic, kind in SYSTEM_TYPES.items()),
        *(
            (f"`{tick_topic('{EXCHANGE}', '{SYMBOL}', mode)}`", kind)
            for mode, kind in TICK_TYPES.items()
        ),
    ]
    table = ["| Topic | Payload |", "| --- | --- |"]
    table += [
        f"| {topic} | {' or '.join(map(_anchor, _members(kind)))} |" for topic, kind in topics
    ]
    bus_types = _in_order([member for _, kind in topics for member in _members(kind)])
    lines = _members(BackendLine)
    stdout_table = ["| `event` | Line |", "| --- | --- |"]
    stdout_table += [f'| `"{kind.__struct_config__.tag}"` | {_anchor(kind)} |' for kind in lines]
    return "\n".join(
        [
            INTRODUCTION,
            "## Topics\n",
            "\n".join(table) + "\n",
            "## Messages\n",
            *(_section(kind) for kind in bus_types),
            STDOUT,
            "\n".join(stdout_table) + "\n",
            *(_section(kind) for kind in _in_order(list(lines))),
        ]
    )


if __name__ == "__main__":
    sys.stdout.write(render())
