"""Dhan's Live Market Feed codec: packets built field by field with the protocol's layouts, read
by the official client's parser (dhanhq 2.3.0's ``MarketFeed.process_data``) and by FeedPool's
:func:`normalise`; the packets' checks; requests built and parsed; the IST-as-UTC times."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from dhanhq import DhanContext, MarketFeed

from backend.brokers.dhan import protocol
from backend.brokers.dhan.protocol import ProtocolError
from backend.feed import DEPTH, LTP, QUOTE, TICK_FIELDS

NSE_EQ, NSE_FNO, NSE_CURRENCY = 1, 2, 3
SBIN = 3045
RECEIVED_MS = 1_764_060_124_567
#: 09:15:00 IST on 2025-11-25, as Dhan sends it (India's wall clock read as UTC), and truly.
IST_0915 = int(datetime.datetime(2025, 11, 25, 9, 15, tzinfo=datetime.UTC).timestamp())
TRUE_0915_MS = int(datetime.datetime(2025, 11, 25, 3, 45, tzinfo=datetime.UTC).timestamp()) * 1000
#: Prices float32 carries exactly (multiples of 1/64), so both readers see the same numbers.
LTP_PRICE, OPEN, HIGH, LOW, AVERAGE, CLOSE = 812.25, 800.5, 815.75, 799.25, 808.125, 804.0


@pytest.fixture(scope="module")
def official() -> Iterator[MarketFeed]:
    """The official client, unconnected: only its parser is used. It makes an event loop of its
    own and sets it as its thread's, so it is made in a thread of its own."""
    with ThreadPoolExecutor(1) as thread:
        feed = thread.submit(MarketFeed, DhanContext("1000000001", "token"), [], "v2").result()
    yield feed
    feed.loop.close()


def ticker(segment: int = NSE_EQ, security_id: int = SBIN) -> bytes:
    return protocol.TICKER_PACKET.pack(2, 16, segment, security_id, LTP_PRICE, IST_0915)


def quote(segment: int = NSE_EQ, security_id: int = SBIN) -> bytes:
    return protocol.QUOTE_PACKET.pack(
        4, 50, segment, security_id, LTP_PRICE, 75, IST_0915, AVERAGE, 123_450, 6_000, 5_000,
        OPEN, 0.0, HIGH, LOW,
    )  # fmt: skip


def full(segment: int = NSE_FNO, security_id: int = 52_175) -> bytes:
    book = []
    for level in range(5):
        bid, ask = LTP_PRICE - 0.25 * (level + 1), LTP_PRICE + 0.25 * (level + 1)
        book += [100 + level, 200 + level, 1 + level, 2 + level, bid, ask]
    return protocol.FULL_PACKET.pack(
        8, 162, segment, security_id, LTP_PRICE, 75, IST_0915, AVERAGE, 123_450, 6_000, 5_000,
        9_000, 9_500, 8_500, OPEN, 0.0, HIGH, LOW, *book,
    )  # fmt: skip


def prev_close(segment: int = NSE_EQ, security_id: int = SBIN) -> bytes:
    return protocol.PREV_CLOSE_PACKET.pack(6, 16, segment, security_id, CLOSE, 7_000)


def test_the_packets_have_the_sizes_the_official_client_reads():
    assert protocol.TICKER_PACKET.size == 16 and protocol.QUOTE_PACKET.size == 50
    assert protocol.OI_PACKET.size == 12 and protocol.PREV_CLOSE_PACKET.size == 16
    assert protocol.FULL_PACKET.size == 162 and protocol.DISCONNECT_PACKET.size == 10
    for packet in (ticker(), quote(), full(), prev_close(), protocol.disconnect_packet(807)):
        assert protocol.check(packet) == packet[0]
        assert packet[1] | packet[2] << 8 == len(packet)  # the length counts the header


def test_ltp_quote_and_depth_ticks_agree_with_the_official_client_field_for_field(official):
    feed = official
    ltp = protocol.normalise(ticker(), "SBIN", "NSE", RECEIVED_MS, 0.0)
    theirs = feed.process_data(ticker())
    assert theirs["type"] == "Ticker Data" and theirs["security_id"] == SBIN
    assert ltp == {
        "symbol": "SBIN",
        "exchange": "NSE",
        "mode": LTP,
        "ltp": float(theirs["LTP"]),
        "ltt": TRUE_0915_MS,
        "timestamp": RECEIVED_MS,
    }
    assert theirs["LTT"] == "09:15:00"  # the official client shows India's time

    closes = feed.process_data(prev_close())
    assert closes["type"] == "Previous Close" and float(closes["prev_close"]) == CLOSE
    tick = protocol.normalise(quote(), "SBIN", "NSE", RECEIVED_MS, CLOSE)
    theirs = feed.process_data(quote())
    assert list(tick) == list(TICK_FIELDS[QUOTE])
    assert tick["ltp"] == float(theirs["LTP"]) and tick["ltt"] == TRUE_0915_MS
    assert (tick["open"], tick["high"], tick["low"]) == tuple(
        float(theirs[name]) for name in ("open", "high", "low")
    )
    assert tick["average_price"] == tick["avg_trade_price"] == 808.12 == float(theirs["avg_price"])
    assert tick["last_trade_quantity"] == theirs["LTQ"] == 75
    assert tick["volume"] == theirs["volume"]
    assert tick["total_buy_quantity"] == theirs["total_buy_quantity"] == 5_000
    assert tick["total_sell_quantity"] == theirs["total_sell_quantity"] == 6_000
    # The close is the previous close packet's; the quote's own is the day's, 0 while open.
    assert theirs["close"] == "0.00" and tick["close"] == CLOSE
    assert (tick["change"], tick["change_percent"]) == (8.25, 1.03)

    depth = protocol.normalise(full(), "NIFTY29DEC2626000CE", "NFO", RECEIVED_MS, CLOSE)
    theirs = feed.process_data(full())
    assert list(depth) == list(TICK_FIELDS[DEPTH])
    assert depth["oi"] == theirs["OI"] == 9_000
    assert (depth["upper_circuit"], depth["lower_circuit"]) == (0.0, 0.0)
    assert depth["depth"]["buy"] == [
        {"price": float(level["bid_price"]), "quantity": level["bid_quantity"],
         "orders": level["bid_orders"]}
        for level in theirs["depth"]
    ]  # fmt: skip
    assert depth["depth"]["sell"] == [
        {"price": float(level["ask_price"]), "quantity": level["ask_quantity"],
         "orders": level["ask_orders"]}
        for level in theirs["depth"]
    ]  # fmt: skip


def test_prices_are_rounded_to_the_segments_step():
    """float32 carries about 7 digits: 26000.05 arrives as 26000.05078..., a currency's 89.0125
    as 89.01249694... Paise elsewhere, quarter paise for currencies."""
    index = protocol.TICKER_PACKET.pack(2, 16, 0, 13, 26000.05, IST_0915)
    currency = protocol.TICKER_PACKET.pack(2, 16, NSE_CURRENCY, 1101, 89.0125, IST_0915)
    assert protocol.normalise(index, "NIFTY", "NSE_INDEX", 0, 0.0)["ltp"] == 26000.05
    assert protocol.normalise(currency, "USDINR29DEC26FUT", "CDS", 0, 0.0)["ltp"] == 89.0125


def test_without_a_previous_close_the_change_is_zero():
    tick = protocol.normalise(quote(), "SBIN", "NSE", RECEIVED_MS, 0.0)
    assert (tick["close"], tick["change"], tick["change_percent"]) == (0.0, 0.0, 0.0)


def test_a_disconnect_packet_carries_its_reason_as_the_official_client_reads_it(official, capsys):
    packet = protocol.disconnect_packet(protocol.TOKEN_EXPIRED)
    assert protocol.disconnect_reason(packet) == 807
    assert official.process_data(packet) is None
    assert "Access Token is expired" in capsys.readouterr().out
    assert protocol.reason_text(805) == "Too many requests or connections (805)"


@pytest.mark.parametrize(
    ("packet", "problem"),
    [
        (b"\x02\x10\x00", "shorter than the 8-byte header"),
        (ticker()[:-1], "says it is 16"),
        (ticker() + b"\x00", "says it is 16"),
        (protocol.HEADER.pack(4, 16, 1, SBIN) + bytes(8), "code 4 is 50 bytes, not 16"),
        (protocol.HEADER.pack(9, 8, 1, SBIN), "no packet has code 9"),
    ],
)
def test_a_malformed_packet_is_refused_saying_why(packet, problem):
    with pytest.raises(ProtocolError, match=problem):
        protocol.check(packet)


def test_a_market_status_packet_of_any_length_is_read():
    assert protocol.check(protocol.HEADER.pack(7, 8, 0, 0)) == protocol.MARKET_STATUS_CODE
    assert protocol.check(protocol.HEADER.pack(7, 12, 0, 0) + bytes(4)) == 7


def test_a_ticks_route_is_its_header():
    assert protocol.packet_route(full()) == protocol.route_key(NSE_FNO, 52_175, DEPTH)
    assert protocol.packet_route(ticker()) == protocol.route_key(NSE_EQ, SBIN, LTP)
    assert protocol.instrument_of(prev_close()) == protocol.instrument_of(quote())


def test_requests_are_the_documented_json_and_parse_back():
    text = protocol.subscription_request(protocol.QUOTE_REQUEST, [(NSE_EQ, SBIN), (0, 13)])
    assert json.loads(text) == {
        "RequestCode": 17,
        "InstrumentCount": 2,
        "InstrumentList": [
            {"ExchangeSegment": "NSE_EQ", "SecurityId": "3045"},
            {"ExchangeSegment": "IDX_I", "SecurityId": "13"},
        ],
    }
    request = protocol.parse_request(text)
    assert (request.code, request.instruments) == (17, ((NSE_EQ, SBIN), (0, 13)))
    assert protocol.parse_request(protocol.disconnect_request()).code == 12
    with pytest.raises(ProtocolError, match="1 to 100 instruments"):
        protocol.subscription_request(15, [(NSE_EQ, n) for n in range(1, 102)])


def test_the_official_clients_requests_parse():
    """What ``MarketFeed`` sends (default separators, the unsubscribe as code + 1, and a
    ``SecurityId`` the caller gave as a number) reads as it meant."""
    sent = json.dumps(
        {
            "RequestCode": 22,
            "InstrumentCount": 1,
            "InstrumentList": [{"ExchangeSegment": "NSE_FNO", "SecurityId": 52175}],
        }
    )
    request = protocol.parse_request(sent)
    assert (request.code, request.instruments) == (22, ((NSE_FNO, 52_175),))
    assert protocol.UNSUBSCRIBE[request.code] == DEPTH


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "not JSON"),
        ("[1]", "not a JSON object"),
        ('{"RequestCode": 11}', "RequestCode 11"),
        ('{"RequestCode": 15, "InstrumentCount": 0, "InstrumentList": []}', "1 to 100"),
        (
            '{"RequestCode": 15, "InstrumentCount": 2, "InstrumentList": '
            '[{"ExchangeSegment": "NSE_EQ", "SecurityId": "1"}]}',
            "InstrumentCount",
        ),
        (
            '{"RequestCode": 15, "InstrumentCount": 1, "InstrumentList": '
            '[{"ExchangeSegment": "NSE", "SecurityId": "1"}]}',
            "unknown ExchangeSegment",
        ),
        (
            '{"RequestCode": 15, "InstrumentCount": 1, "InstrumentList": '
            '[{"ExchangeSegment": "NSE_EQ", "SecurityId": "SBIN"}]}',
            "not a security ID",
        ),
        (
            '{"RequestCode": 15, "InstrumentCount": 1, "InstrumentList": '
            '[{"ExchangeSegment": "NSE_EQ", "SecurityId": "99999999999"}]}',
            "not a security ID",
        ),
    ],
)
def test_a_malformed_request_is_refused_saying_why(text, problem):
    with pytest.raises(ProtocolError, match=problem):
        protocol.parse_request(text)


def test_dhans_times_are_indias_wall_clock_read_as_utc():
    assert protocol.epoch_ms(IST_0915) == TRUE_0915_MS
    assert protocol.dhan_seconds(TRUE_0915_MS // 1000) == IST_0915
