"""KiteTicker packets: split and normalise round trips of packets built field by field
(``kite_packets``), the official client's parser as the judge of those packets and of
:func:`normalise`, and request and text-message parsing."""

import json

import kite_packets
import pytest
from kiteconnect import KiteTicker

from backend.brokers.zerodha import protocol as kite
from backend.brokers.zerodha.protocol import ProtocolError
from backend.feed import DEPTH, QUOTE, TICK_FIELDS

NSE = (2885 << 8) | 1  # 738561, RELIANCE
CDS = (1234 << 8) | 3
BCD = (5678 << 8) | 6
MCX = (4321 << 8) | 7
NCO = (91 << 8) | 12
NIFTY = (1001 << 8) | 9  # 256265, NIFTY 50
SENSEX = (1043 << 8) | 9  # 267017
DIVISORS = {NSE: 100, CDS: 10**7, BCD: 10**4, MCX: 100, NCO: 10**4, NIFTY: 100}

EXCHANGE_TS = 1_764_060_123
LAST_TRADE_TS = 1_764_060_120
RECEIVED_MS = 1_764_060_124_567


def _rupees(token: int, rupees: float) -> int:
    """The wire value of a price in ``token``'s segment."""
    return round(rupees * DIVISORS[NIFTY if token == SENSEX else token])


def _book(token: int) -> list[int]:
    """Five buy levels falling from 99.9, five sell levels rising from 100.1 (as wire values)."""
    levels = [(100 + i, _rupees(token, 99.9 - i / 10), 1 + i) for i in range(5)]
    levels += [(200 + i, _rupees(token, 100.1 + i / 10), 2 + i) for i in range(5)]
    return [value for level in levels for value in level]


def _quote_fields(token: int) -> kite_packets.QuoteFields:
    """The fields of a quote packet after token and ltp (100.25)."""
    r = lambda rupees: _rupees(token, rupees)  # noqa: E731
    return kite_packets.QuoteFields(
        last_quantity=75,
        average_price=r(99.5),
        volume=123_450,
        total_buy_quantity=5_000,
        total_sell_quantity=6_000,
        open=r(98),
        high=r(101.5),
        low=r(97.25),
        close=r(99),
    )


def _ltp(token: int) -> bytes:
    return kite_packets.pack_ltp(token, _rupees(token, 100.25))


def _quote(token: int) -> bytes:
    return kite_packets.pack_quote(token, _rupees(token, 100.25), _quote_fields(token))


def _full(token: int) -> bytes:
    return kite_packets.pack_full(
        token,
        _rupees(token, 100.25),
        _quote_fields(token),
        last_trade_time=LAST_TRADE_TS,
        oi=9_000,
        oi_day_high=9_500,
        oi_day_low=8_500,
        exchange_timestamp=EXCHANGE_TS,
        depth=_book(token),
    )


def _index_fields(token: int) -> dict[str, int]:
    """The fields of an index packet after token and ltp (24,950.5): down 50 on the day."""
    r = lambda rupees: _rupees(token, rupees)  # noqa: E731
    return {
        "high": r(25_100),
        "low": r(24_900.25),
        "open": r(25_050),
        "close": r(25_000.5),
        "change": r(-50),
    }


def _index_quote(token: int) -> bytes:
    return kite_packets.pack_index_quote(token, _rupees(token, 24_950.5), **_index_fields(token))


def _index_full(token: int) -> bytes:
    return kite_packets.pack_index_full(
        token, _rupees(token, 24_950.5), **_index_fields(token), exchange_timestamp=EXCHANGE_TS
    )


def _roundtrip(*packets: bytes) -> list[dict]:
    split = kite.split(kite_packets.message(packets))
    assert split == list(packets)
    return [kite.normalise(p, "SYM", "NSE", RECEIVED_MS) for p in split]


# (a) encode -> split -> normalise


def test_mode_vocabulary():
    assert (kite.LTP, kite.QUOTE, kite.DEPTH) == (1, 2, 3)
    assert kite.KITE_MODES == {1: "ltp", 2: "quote", 3: "full"}
    assert kite.FEEDPOOL_MODES == {"ltp": 1, "quote": 2, "full": 3}
    assert (KiteTicker.MODE_LTP, KiteTicker.MODE_QUOTE, KiteTicker.MODE_FULL) == (
        kite.MODE_LTP,
        kite.MODE_QUOTE,
        kite.MODE_FULL,
    )


def test_segments_and_divisors_match_the_official_client():
    assert {k: v for k, v in KiteTicker.EXCHANGE_MAP.items() if k != "bsecds"} == kite.SEGMENTS
    assert [kite.segment_of(t) for t in (NSE, CDS, BCD, MCX, NCO, NIFTY)] == [1, 3, 6, 7, 12, 9]
    assert [kite.price_divisor(kite.segment_of(t)) for t in DIVISORS] == list(DIVISORS.values())


def test_ltp_round_trip():
    (tick,) = _roundtrip(_ltp(NSE))
    assert tick == {
        "symbol": "SYM",
        "exchange": "NSE",
        "mode": kite.LTP,
        "ltp": 100.25,
        "ltt": RECEIVED_MS,
        "timestamp": RECEIVED_MS,
    }


@pytest.mark.parametrize("token", [NSE, CDS, BCD, NCO])
def test_quote_round_trip(token):
    (tick,) = _roundtrip(_quote(token))
    assert set(tick) == set(TICK_FIELDS[QUOTE])
    assert tick["mode"] == kite.QUOTE
    assert (tick["ltt"], tick["timestamp"]) == (RECEIVED_MS, RECEIVED_MS)
    assert tick["ltp"] == pytest.approx(100.25)
    assert (tick["open"], tick["high"], tick["low"], tick["close"]) == pytest.approx(
        (98, 101.5, 97.25, 99)
    )
    assert tick["average_price"] == tick["avg_trade_price"] == pytest.approx(99.5)
    assert (tick["volume"], tick["last_trade_quantity"]) == (123_450, 75)
    assert (tick["total_buy_quantity"], tick["total_sell_quantity"]) == (5_000, 6_000)
    assert tick["change"] == 1.25
    assert tick["change_percent"] == 1.26


@pytest.mark.parametrize("token", [NSE, CDS, BCD, NCO])
def test_full_round_trip(token):
    (tick,) = _roundtrip(_full(token))
    assert set(tick) == set(TICK_FIELDS[DEPTH])
    assert tick["mode"] == kite.DEPTH
    assert tick["timestamp"] == EXCHANGE_TS * 1000
    assert tick["ltt"] == LAST_TRADE_TS * 1000
    assert tick["ltp"] == pytest.approx(100.25)
    assert tick["close"] == pytest.approx(99)
    assert (tick["change"], tick["change_percent"]) == (1.25, 1.26)
    assert (tick["oi"], tick["upper_circuit"], tick["lower_circuit"]) == (9_000, 0.0, 0.0)
    buy, sell = tick["depth"]["buy"], tick["depth"]["sell"]
    assert [(lv["quantity"], lv["orders"]) for lv in buy] == [(100 + i, 1 + i) for i in range(5)]
    assert [(lv["quantity"], lv["orders"]) for lv in sell] == [(200 + i, 2 + i) for i in range(5)]
    assert [lv["price"] for lv in buy] == pytest.approx([99.9, 99.8, 99.7, 99.6, 99.5])
    assert [lv["price"] for lv in sell] == pytest.approx([100.1, 100.2, 100.3, 100.4, 100.5])


def test_currency_prices_use_their_segment_divisor():
    cds, bcd = _roundtrip(
        kite_packets.pack_ltp(CDS, 831_234_567), kite_packets.pack_ltp(BCD, 831_234)
    )
    assert cds["ltp"] == 83.1234567
    assert bcd["ltp"] == 83.1234


def test_index_round_trip():
    quote, full = _roundtrip(_index_quote(NIFTY), _index_full(NIFTY))
    assert (quote["mode"], full["mode"]) == (kite.QUOTE, kite.DEPTH)
    assert set(quote) == set(TICK_FIELDS[QUOTE])
    assert set(full) == set(TICK_FIELDS[DEPTH])
    assert (quote["ltt"], quote["timestamp"]) == (RECEIVED_MS, RECEIVED_MS)
    assert (full["ltt"], full["timestamp"]) == (EXCHANGE_TS * 1000, EXCHANGE_TS * 1000)
    for tick in (quote, full):
        assert tick["ltp"] == 24_950.5
        assert (tick["open"], tick["high"], tick["low"], tick["close"]) == (
            25_050,
            25_100,
            24_900.25,
            25_000.5,
        )
        assert (tick["change"], tick["change_percent"]) == (-50.0, -0.2)
        assert (tick["volume"], tick["last_trade_quantity"], tick["average_price"]) == (0, 0, 0)
    empty = [{"price": 0.0, "quantity": 0, "orders": 0}] * 5
    assert full["depth"] == {"buy": empty, "sell": empty}
    assert full["oi"] == 0


def test_zero_close_and_zero_times():
    zeros = kite_packets.QuoteFields(*[0] * len(kite_packets.QuoteFields._fields))
    packet = kite_packets.pack_full(
        NSE,
        10_000,
        zeros,
        last_trade_time=0,
        oi=0,
        oi_day_high=0,
        oi_day_low=0,
        exchange_timestamp=0,
        depth=[0] * 30,
    )
    (tick,) = _roundtrip(packet)
    assert (tick["change"], tick["change_percent"]) == (0.0, 0.0)
    assert (tick["ltt"], tick["timestamp"]) == (RECEIVED_MS, RECEIVED_MS)


def test_token_and_mode_from_length():
    packets = [_ltp(NSE), _index_quote(NIFTY), _index_full(NIFTY), _quote(CDS), _full(BCD)]
    assert [len(p) for p in packets] == [8, 28, 32, 44, 184]
    assert [kite.token_and_mode(p) for p in packets] == [
        (NSE, kite.LTP),
        (NIFTY, kite.QUOTE),
        (NIFTY, kite.DEPTH),
        (CDS, kite.QUOTE),
        (BCD, kite.DEPTH),
    ]
    with pytest.raises(ProtocolError, match="12 bytes"):
        kite.token_and_mode(bytes(12))
    with pytest.raises(ProtocolError, match="12 bytes"):
        kite.normalise(bytes(12), "SYM", "NSE", RECEIVED_MS)


def test_full_packet_needs_thirty_depth_values():
    with pytest.raises(ProtocolError, match="30 depth values"):
        kite_packets.pack_full(
            NSE,
            0,
            _quote_fields(NSE),
            last_trade_time=0,
            oi=0,
            oi_day_high=0,
            oi_day_low=0,
            exchange_timestamp=0,
            depth=[0] * 29,
        )


# (b) the official client's parser as the judge


def _official(message: bytes) -> list[dict]:
    return KiteTicker("key", "token")._parse_binary(message)


def _epoch(moment) -> int:
    return round(moment.timestamp())


def _agree(official: dict, packet: bytes) -> None:
    """The official client's tick and FeedPool's agree field for field."""
    ours = kite.normalise(packet, "SYM", "NSE", RECEIVED_MS)
    assert official["instrument_token"] == kite.token_and_mode(packet)[0]
    assert kite.FEEDPOOL_MODES[official["mode"]] == ours["mode"]
    assert official["last_price"] == ours["ltp"]
    if official["mode"] == kite.MODE_LTP:
        return
    ohlc = official["ohlc"]
    assert (ohlc["open"], ohlc["high"], ohlc["low"], ohlc["close"]) == (
        ours["open"],
        ours["high"],
        ours["low"],
        ours["close"],
    )
    # Rounded to 2 places: up to half a hundredth apart, a float's error more at an exact half.
    assert official["change"] == pytest.approx(ours["change_percent"], abs=0.005 + 1e-9)
    if official["tradable"]:
        assert official["last_traded_quantity"] == ours["last_trade_quantity"]
        assert official["average_traded_price"] == ours["average_price"]
        assert official["volume_traded"] == ours["volume"]
        assert official["total_buy_quantity"] == ours["total_buy_quantity"]
        assert official["total_sell_quantity"] == ours["total_sell_quantity"]
    if official["mode"] == kite.MODE_QUOTE:
        return
    assert _epoch(official["exchange_timestamp"]) * 1000 == ours["timestamp"]
    if official["tradable"]:
        assert _epoch(official["last_trade_time"]) * 1000 == ours["ltt"]
        assert official["oi"] == ours["oi"]
        assert official["depth"] == ours["depth"]


KINDS = {
    "ltp": _ltp,
    "quote": _quote,
    "full": _full,
    "index quote": _index_quote,
    "index full": _index_full,
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_official_client_agrees(kind):
    tokens = [NIFTY, SENSEX] if kind.startswith("index") else [NSE, CDS, BCD, MCX, NCO]
    packets = [KINDS[kind](token) for token in tokens]
    ticks = _official(kite_packets.message(packets))
    assert len(ticks) == len(packets)
    for official, packet in zip(ticks, packets, strict=True):
        _agree(official, packet)


def test_official_client_agrees_on_a_mixed_message():
    packets = [_ltp(NSE), _quote(CDS), _full(BCD), _index_quote(NIFTY), _index_full(NIFTY)]
    ticks = _official(kite_packets.message(packets))
    assert [t["mode"] for t in ticks] == ["ltp", "quote", "full", "quote", "full"]
    for official, packet in zip(ticks, packets, strict=True):
        _agree(official, packet)


def test_official_client_agrees_at_an_exact_half_percent():
    # An index quote whose change is exactly -0.475 %: rounded to -0.47, a float's error past
    # half a hundredth from the official figure.
    packet = bytes.fromhex("00043a0900599967005a0da7005981110059fa1f005a06e0ffff9287")
    (official,) = _official(kite_packets.message([packet]))
    assert official["change"] == pytest.approx(-0.475)
    _agree(official, packet)


def test_official_client_ignores_the_heartbeat():
    ticker = KiteTicker("key", "token")
    ticks: list = []
    ticker.on_ticks = lambda ws, batch: ticks.append(batch)
    ticker._on_message(None, kite.HEARTBEAT, True)
    ticker._on_message(None, kite_packets.message([_ltp(NSE)]), True)
    assert len(ticks) == 1
    assert kite.split(kite.HEARTBEAT) == []


def test_official_client_reads_the_error_frame():
    ticker = KiteTicker("key", "token")
    errors: list = []
    ticker.on_error = lambda ws, code, reason: errors.append((code, reason))
    text = kite.error_message("Invalid instrument")
    ticker._parse_text_message(text)
    assert errors == [(0, "Invalid instrument")]
    assert text == '{"type":"error","data":"Invalid instrument"}'
    assert kite.parse_text(text) == ("error", "Invalid instrument")


# (c) requests


def test_request_builders_and_parser():
    assert kite.subscribe_request([NSE, NIFTY]) == '{"a":"subscribe","v":[738561,256265]}'
    assert kite.unsubscribe_request([NSE]) == '{"a":"unsubscribe","v":[738561]}'
    assert kite.mode_request("full", [NSE]) == '{"a":"mode","v":["full",[738561]]}'
    assert kite.parse_request(kite.subscribe_request([NSE, NIFTY])) == kite.Request(
        "subscribe", None, (NSE, NIFTY)
    )
    assert kite.parse_request(kite.unsubscribe_request([NSE])) == kite.Request(
        "unsubscribe", None, (NSE,)
    )
    for mode in ("ltp", "quote", "full"):
        assert kite.parse_request(kite.mode_request(mode, [NSE, CDS])) == kite.Request(
            "mode", mode, (NSE, CDS)
        )
    with pytest.raises(ProtocolError, match="unknown Kite mode 'depth'"):
        kite.mode_request("depth", [NSE])


def test_parse_request_accepts_the_official_clients_spacing():
    text = json.dumps({"a": KiteTicker._message_setmode, "v": [KiteTicker.MODE_LTP, [NSE]]})
    assert kite.parse_request(text) == kite.Request("mode", "ltp", (NSE,))


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("subscribe 738561", "not JSON"),
        ("[738561]", "not a JSON object"),
        ('{"v": [738561]}', '"a" must be .* not None'),
        ('{"a": "sub", "v": [738561]}', "not 'sub'"),
        ('{"a": "subscribe", "v": 738561}', "tokens must be a list, not int"),
        ('{"a": "subscribe"}', "tokens must be a list, not NoneType"),
        ('{"a": "subscribe", "v": [true]}', "token True"),
        ('{"a": "subscribe", "v": [0]}', "token 0"),
        ('{"a": "subscribe", "v": [-5]}', "token -5"),
        ('{"a": "subscribe", "v": [4294967296]}', "token 4294967296"),
        ('{"a": "subscribe", "v": ["738561"]}', "token '738561'"),
        ('{"a": "unsubscribe", "v": [1.5]}', "token 1.5"),
        ('{"a": "mode", "v": ["full"]}', r"\[mode, \[tokens\]\]"),
        ('{"a": "mode", "v": "full"}', r"\[mode, \[tokens\]\]"),
        ('{"a": "mode", "v": ["depth", [738561]]}', "not 'depth'"),
        ('{"a": "mode", "v": ["full", 738561]}', "tokens must be a list"),
    ],
)
def test_parse_request_refuses_malformed_requests(text, complaint):
    with pytest.raises(ProtocolError, match=complaint):
        kite.parse_request(text)


def test_parse_text():
    order = json.dumps({"type": "order", "data": {"order_id": "1"}})
    assert kite.parse_text(order) == ("order", {"order_id": "1"})
    assert kite.parse_text('{"type": "message", "data": "hi"}') == ("message", "hi")
    with pytest.raises(ProtocolError, match="not JSON"):
        kite.parse_text("{")
    with pytest.raises(ProtocolError, match='"type" must be a string'):
        kite.parse_text('{"data": 1}')


# (d) framing errors


def test_split_refuses_broken_framing():
    whole = kite_packets.message([_ltp(NSE), _quote(NSE)])
    with pytest.raises(ProtocolError, match="packet 2 of 2 claims 44 bytes but 43 remain"):
        kite.split(whole[:-1])
    with pytest.raises(ProtocolError, match="ends before packet 2 of 2"):
        kite.split(whole[: 2 + 2 + 8])
    with pytest.raises(ProtocolError, match="1 bytes after the last of 2 packets"):
        kite.split(whole + b"\x00")
    with pytest.raises(ProtocolError, match="empty"):
        kite.split(b"")
    assert kite.split(b"\x00\x00") == []
