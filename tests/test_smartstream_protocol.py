"""SmartStream packets: encode and decode round trips, field by field, and request parsing."""

import json

import pytest

from backend.brokers.angel import protocol
from backend.brokers.angel.protocol import Level, Packet


def _book() -> tuple[Level, ...]:
    bids = [Level(True, 100 + i, 81_200 - 5 * i, 1 + i) for i in range(5)]
    asks = [Level(False, 200 + i, 81_250 + 5 * i, 2 + i) for i in range(5)]
    return tuple(bids + asks)


PACKETS = {
    protocol.LTP: Packet(1, 1, "3045", 11, 1_764_060_000_123, 81_234),
    protocol.QUOTE: Packet(
        2,
        2,
        "43215",
        12,
        1_764_060_000_456,
        2_599_50,
        75,
        2_590_00,
        123_450,
        5_000.0,
        6_000.0,
        2_580_00,
        2_610_00,
        2_570_00,
        2_585_00,
    ),
    protocol.SNAP_QUOTE: Packet(
        3,
        3,
        "500112",
        13,
        1_764_060_000_789,
        81_234,
        10,
        81_000,
        12_345,
        1_000.0,
        2_000.0,
        80_000,
        82_000,
        79_000,
        80_500,
        1_764_060_000,
        55,
        0,
        _book(),
        88_550,
        72_450,
        90_000,
        60_000,
    ),
}


@pytest.mark.parametrize("mode", protocol.MODES)
def test_round_trip_field_by_field(mode):
    packet = PACKETS[mode]
    frame = protocol.encode(packet)
    assert len(frame) == {1: 51, 2: 123, 3: 379}[mode]
    decoded = protocol.decode(frame)
    for name in Packet.__slots__:
        assert getattr(decoded, name) == getattr(packet, name), name


def test_layout_offsets_match_the_specification():
    frame = protocol.encode(PACKETS[protocol.SNAP_QUOTE])
    assert frame[0] == 3 and frame[1] == 3
    assert frame[2:27].rstrip(b"\0") == b"500112"
    assert int.from_bytes(frame[43:51], "little") == 81_234
    assert int.from_bytes(frame[115:123], "little") == 80_500  # close
    assert int.from_bytes(frame[131:139], "little") == 55  # open interest
    assert int.from_bytes(frame[147:149], "little") == 1  # first book entry: a buy
    assert int.from_bytes(frame[355:363], "little") == 72_450  # lower circuit


def test_normalise_gives_rupees_and_every_documented_field():
    tick = protocol.normalise(protocol.encode(PACKETS[protocol.SNAP_QUOTE]), "SBIN", "BSE")
    assert tick["ltp"] == 812.34
    assert tick["close"] == 805.0
    assert tick["change"] == pytest.approx(7.34)
    assert tick["change_percent"] == 0.91
    assert tick["average_price"] == tick["avg_trade_price"] == 810.0
    assert tick["upper_circuit"] == 885.5 and tick["lower_circuit"] == 724.5
    assert tick["ltt"] == 1_764_060_000_000  # seconds on the wire, ms in the tick
    assert tick["timestamp"] == 1_764_060_000_789
    assert [level["price"] for level in tick["depth"]["buy"]] == [
        812.0,
        811.95,
        811.9,
        811.85,
        811.8,
    ]
    assert tick["depth"]["sell"][0] == {"price": 812.5, "quantity": 200, "orders": 2}
    ltp_tick = protocol.normalise(protocol.encode(PACKETS[protocol.LTP]), "SBIN", "NSE")
    assert set(ltp_tick) == {"symbol", "exchange", "mode", "ltp", "ltt", "timestamp"}


def test_currency_prices_use_ten_million_per_rupee():
    packet = Packet(1, protocol.CURRENCY_EXCHANGE_TYPE, "1", 1, 1, 883_125_000)
    assert protocol.normalise(protocol.encode(packet), "USDINR", "CDS")["ltp"] == 88.3125


@pytest.mark.parametrize("frame", [b"", b"\x01" * 50, b"\x02" + b"\0" * 50, b"\x09" * 123])
def test_decode_rejects_frames_of_the_wrong_size_or_mode(frame):
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(frame)


@pytest.mark.parametrize("frame", [b"", b"\x01" * 50, b"\x02" + b"\0" * 50, b"\x09" * 123])
def test_frame_route_rejects_frames_of_the_wrong_size_or_mode(frame):
    with pytest.raises(protocol.ProtocolError):
        protocol.frame_route(frame)


@pytest.mark.parametrize("mode", protocol.MODES)
def test_a_tick_frame_begins_with_its_route_key(mode):
    packet = PACKETS[mode]
    key = (packet.exchange_type, packet.token)
    assert protocol.frame_route(protocol.encode(packet)) == protocol.route_key(key, mode)
    other_token = (packet.exchange_type, packet.token + "1")
    assert protocol.frame_route(protocol.encode(packet)) != protocol.route_key(other_token, mode)


def test_request_round_trip():
    text = protocol.request(1, 3, {1: ["3045", "2885"], 2: ["43215"]}, "abcde12345XYZ")
    message = json.loads(text)
    assert message["correlationID"] == "abcde12345"
    parsed = protocol.parse_request(text)
    assert parsed.action == 1 and parsed.mode == 3
    assert parsed.tokens == ((1, "3045"), (1, "2885"), (2, "43215"))


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"action": 2, "params": {"mode": 1, "tokenList": [{"exchangeType": 1, "tokens": ["1"]}]}}',
        '{"action": 1, "params": {"mode": 4, "tokenList": [{"exchangeType": 1, "tokens": ["1"]}]}}',
        '{"action": 1, "params": {"mode": 1, "tokenList": []}}',
        '{"action": 1, "params": {"mode": 1, "tokenList": [{"exchangeType": 6, "tokens": ["1"]}]}}',
        '{"action": 1, "params": {"mode": 1, "tokenList": [{"exchangeType": 1, "tokens": [1]}]}}',
        '{"correlationID": 12345, "action": 1, "params": {"mode": 1, "tokenList": '
        '[{"exchangeType": 1, "tokens": ["1"]}]}}',
    ],
)
def test_malformed_requests_are_refused(text):
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_request(text)
