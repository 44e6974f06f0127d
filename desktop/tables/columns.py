"""Declarative table columns: a table is configured by a tuple of :class:`Column`, not by code.

A column says which value of a row object it shows, how that value reads as text, how it sorts,
its alignment, initial width and an optional colour. It knows nothing about Qt, so the same spec
drives a model's cells and a CSV export alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any


def plain(value: Any) -> str:
    """The value's ``str``."""
    return str(value)


@dataclass(frozen=True)
class Column:
    """One table column over row objects.

    ``key`` names the row attribute shown unless ``value`` is given. ``fmt`` turns a present value
    into text (``None`` always reads as an empty cell). ``colour`` returns a ``#rrggbb`` colour for
    a row, or ``None`` for the default. ``width`` is the initial width in characters of the
    longest text it holds (the view makes room for its title too). ``about`` is the title's
    tooltip: what the column counts, where the title is short.
    """

    key: str
    title: str
    width: int = 10
    align: str = "left"  # "left", "right" or "center"
    fmt: Callable[[Any], str] = plain
    value: Callable[[Any], Any] | None = None
    colour: Callable[[Any], str | None] | None = None
    tooltip: Callable[[Any], str] | None = None
    about: str = ""

    def raw(self, row: Any) -> Any:
        """The row's value for this column: what sorting compares."""
        return self.value(row) if self.value else attrgetter(self.key)(row)

    def text(self, row: Any) -> str:
        raw = self.raw(row)
        return "" if raw is None else self.fmt(raw)

    def colour_of(self, row: Any) -> str | None:
        return self.colour(row) if self.colour else None

    def tooltip_of(self, row: Any) -> str | None:
        return self.tooltip(row) if self.tooltip else None


def column_index(columns: Sequence[Column], key: str) -> int:
    """The position of the column named ``key``."""
    for index, column in enumerate(columns):
        if column.key == key:
            return index
    raise KeyError(key)


def text_rows(columns: Sequence[Column], rows: Iterable[Any]) -> Iterable[list[str]]:
    """Each row as the texts its cells show, in column order."""
    for row in rows:
        yield [column.text(row) for column in columns]
