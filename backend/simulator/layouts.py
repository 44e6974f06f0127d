"""Packet layouts as numpy record types, read from the protocols' :class:`struct.Struct` formats.

A dialect packs a batch of ticks by filling a record array whose records are the broker's packets
byte for byte, so each field is set for the whole batch in one assignment. :func:`record` builds
such a record type from the protocol's own ``Struct``, so each layout is written once, in the
protocol module.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping, Sequence

import numpy as np

_CODES = {"B": "u1", "H": "u2", "I": "u4", "i": "i4", "q": "i8", "f": "f4", "d": "f8"}
_TOKENS = re.compile(r"(\d*)([xsBHIiqfd])")

#: A group of fields repeated ``count`` times: ``(name, field names, count)``, read as one field
#: holding ``count`` records (e.g. the five levels a side of a book).
Group = tuple[str, Sequence[str], int]


def record(
    layout: struct.Struct,
    names: Sequence[str | Group],
    prefix: Sequence[tuple[str, str]] = (),
) -> np.dtype:
    """The record type of ``layout``, its fields named ``names`` in order; pad bytes are skipped.

    ``prefix`` puts fields before the packet: ``(name, numpy type)`` pairs, such as the frame or
    length header a packet travels behind. ``ValueError`` if the names do not fit the layout.
    """
    order = layout.format[0]
    if order not in "<>!":
        raise ValueError(f"a layout needs an explicit byte order, not {layout.format!r}")
    reader = _Reader(layout.format[1:], "<" if order == "<" else ">")
    names_, kinds, offsets = [], [], []
    for name, kind in prefix:
        names_.append(name)
        kinds.append(np.dtype(kind).newbyteorder(reader.order))
        offsets.append(reader.at)
        reader.at += kinds[-1].itemsize
    start = reader.at
    for entry in names:
        if isinstance(entry, str):
            name = entry
            offset, kind = reader.field()
        else:
            name, members, count = entry
            offset, inner = reader.group(members)
            for _ in range(count - 1):
                reader.group(members)
            kind = np.dtype((inner, (count,)))
        names_.append(name)
        kinds.append(kind)
        offsets.append(offset)
    reader.skip_padding()
    if reader.codes or reader.at - start != layout.size:
        raise ValueError(f"the names do not fit {layout.format!r}")
    return np.dtype({"names": names_, "formats": kinds, "offsets": offsets, "itemsize": reader.at})


def shared_fields(kind: np.dtype, columns: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    """Each field of ``kind`` that ``columns`` names too, with its column, in ``kind``'s order:
    what a packet copies from a market row."""
    return tuple((name, columns[name]) for name in kind.names if name in columns)


class _Reader:
    """A struct format's codes, read field by field; ``at`` is the next field's offset."""

    def __init__(self, codes: str, order: str) -> None:
        self.order = order
        self.at = 0
        # One entry per field, a repeated code once per repeat (``25s`` and ``2x`` stay one).
        self.codes = []
        for count, code in _TOKENS.findall(codes):
            times = int(count or 1)
            self.codes += [(code, times)] if code in "sx" else [(code, 1)] * times

    def skip_padding(self) -> None:
        while self.codes and self.codes[0][0] == "x":
            self.at += self.codes.pop(0)[1]

    def field(self) -> tuple[int, np.dtype]:
        """The next field's offset and type."""
        self.skip_padding()
        if not self.codes:
            raise ValueError("more names than fields")
        code, count = self.codes.pop(0)
        if code == "s":
            kind = np.dtype(f"S{count}")
        else:
            kind = np.dtype(_CODES[code]).newbyteorder(self.order)
        offset, self.at = self.at, self.at + kind.itemsize
        return offset, kind

    def group(self, members: Sequence[str]) -> tuple[int, np.dtype]:
        """One record of a group: its members' fields, then any padding before the next."""
        first = self.at
        fields = [self.field() for _ in members]
        self.skip_padding()
        kind = np.dtype(
            {
                "names": list(members),
                "formats": [kind for _, kind in fields],
                "offsets": [offset - first for offset, _ in fields],
                "itemsize": self.at - first,
            }
        )
        return first, kind
