"""The simulator's packet records, byte for byte against the protocols' own ``struct`` layouts."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from backend.brokers.angel import protocol as angel
from backend.brokers.angel import simulated_stream as smartstream
from backend.brokers.zerodha import protocol as kite
from backend.brokers.zerodha import simulated_stream as kiteticker
from backend.simulator.layouts import record
from backend.wire.frames import FIN_BINARY, header

ANGEL = {mode: (angel.PACKETS[mode], *smartstream.FRAMES[mode]) for mode in angel.PACKETS}
KITE_LAYOUTS = {
    8: kite.LTP_PACKET,
    28: kite.INDEX_QUOTE_PACKET,
    32: kite.INDEX_FULL_PACKET,
    44: kite.QUOTE_PACKET,
    184: kite.FULL_PACKET,
}


def filled(kind: np.dtype, skip: int) -> tuple[np.ndarray, list]:
    """One record of ``kind`` with a distinct value in every field after the first ``skip``, and
    those values in layout order."""
    packet = np.zeros(1, kind)
    values: list = []
    for name in kind.names[skip:]:
        field = kind.fields[name][0]
        if field.subdtype is None:
            value = b"TOKEN-%d" % len(values) if field.kind == "S" else len(values) + 7
            packet[name] = value
            values.append(value)
            continue
        level_kind, (levels,) = field.subdtype
        for level in range(levels):
            for member in level_kind.names:
                packet[name][0, level][member] = len(values) + 7
                values.append(len(values) + 7)
    return packet, values


@pytest.mark.parametrize("mode", sorted(ANGEL))
def test_angel_records_are_the_protocols_packets_behind_their_frame_header(mode):
    layout, kind, frame = ANGEL[mode]
    packet, values = filled(kind, skip=1)
    packet["frame"] = frame
    assert packet.tobytes() == header(FIN_BINARY, layout.size) + layout.pack(*values)


@pytest.mark.parametrize("kind", list(kiteticker.PACKETS.values()), ids=str)
def test_kite_records_are_the_protocols_packets_behind_their_length(kind):
    layout = KITE_LAYOUTS[kind.itemsize - 2]
    packet, values = filled(kind, skip=1)
    packet["length"] = layout.size
    assert packet.tobytes() == struct.pack(">H", layout.size) + layout.pack(*values)


def test_names_that_do_not_fit_the_layout_are_refused():
    layout = struct.Struct("<BqH")
    assert record(layout, ["a", "b", "c"]).itemsize == layout.size
    with pytest.raises(ValueError, match="more names than fields"):
        record(layout, ["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="do not fit"):
        record(layout, ["a", "b"])
    with pytest.raises(ValueError, match="byte order"):
        record(struct.Struct("BqH"), ["a", "b", "c"])
