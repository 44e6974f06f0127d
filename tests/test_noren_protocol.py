"""Noren OMS's feed codec: the client's messages as the official clients send them, parsed back
as the simulator reads them; snapshots and change-only updates merged into a subscription's
state; that state normalised to FeedPool's tick, field by field, for each mode."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.brokers.noren import protocol
from backend.brokers.noren.protocol import ProtocolError
from backend.feed import DEPTH, LTP, QUOTE, TICK_FIELDS

RECEIVED_MS = 1_764_060_124_567
#: A touchline snapshot, as the official client's documentation shows one, with a close and a
#: feed time.
SNAPSHOT = {
    "t": "tk",
    "e": "NSE",
    "tk": "11630",
    "ts": "NTPC-EQ",
    "pp": "2",
    "ls": "1",
    "ti": "0.05",
    "lp": "118.55",
    "pc": "1.33",
    "o": "117.20",
    "h": "118.65",
    "l": "117.10",
    "c": "117.00",
    "ap": "118.39",
    "v": "162220",
    "bp1": "118.45",
    "sp1": "118.50",
    "bq1": "26",
    "sq1": "6325",
    "ft": "1661314258",
}
DEPTH_SNAPSHOT = {
    **SNAPSHOT,
    "t": "dk",
    "ltq": "15",
    "tbq": "90000",
    "tsq": "81000",
    "oi": "0",
    "uc": "140.40",
    "lc": "93.60",
    **{f"bp{n}": f"{118.50 - 0.05 * n:.2f}" for n in range(1, 6)},
    **{f"sp{n}": f"{118.50 + 0.05 * n:.2f}" for n in range(1, 6)},
    **{f"{side}{n}": str(10 * n) for side in ("bq", "sq") for n in range(1, 6)},
    **{f"{side}{n}": str(n) for side in ("bo", "so") for n in range(1, 6)},
}


def test_the_connect_messages_are_the_official_clients():
    """Key for key and in order, with ``actid`` the user ID and json's default spacing."""
    assert protocol.connect_message("c", "FA1234", "tok") == (
        '{"t": "c", "uid": "FA1234", "actid": "FA1234", "susertoken": "tok", "source": "API"}'
    )
    assert protocol.connect_message("a", "FA1234", "tok") == (
        '{"t": "a", "uid": "FA1234", "actid": "FA1234", "accesstoken": "tok", "source": "API"}'
    )
    with pytest.raises(ProtocolError, match="'c' or 'a'"):
        protocol.connect_message("x", "FA1234", "tok")


@pytest.mark.parametrize("connect", ["c", "a"])
def test_a_connect_parses_back_with_its_user_and_token(connect):
    request = protocol.parse_request(protocol.connect_message(connect, "FA1234", "tok"))
    assert request == protocol.Request(connect, uid="FA1234", token="tok")


@pytest.mark.parametrize("kind", ["t", "u", "d", "ud"])
def test_feed_messages_join_their_keys_with_hashes_and_parse_back(kind):
    keys = ["NSE|22", "BSE|508123", "NFO|48407"]
    text = protocol.feed_message(kind, keys)
    assert json.loads(text) == {"t": kind, "k": "NSE|22#BSE|508123#NFO|48407"}
    assert protocol.parse_request(text) == protocol.Request(kind, keys=tuple(keys))


def test_feedpools_exchanges_name_noren_scrips():
    assert protocol.key("NSE", "3045") == "NSE|3045"
    assert protocol.key("NSE_INDEX", "26000") == "NSE|26000"
    assert protocol.key("BSE_INDEX", "1") == "BSE|1"
    assert protocol.split_key("CDS|1234") == ("CDS", "1234")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[]", "not a JSON object"),
        ('{"k": "NSE|22"}', "without a string 't'"),
        ('{"t": "x", "k": "NSE|22"}', "no client message has t 'x'"),
        ('{"t": "t"}', "needs its scrips in 'k'"),
        ('{"t": "t", "k": "NSE22"}', "is not EXCHANGE|TOKEN"),
        ('{"t": "t", "k": "XYZ|22"}', "is not EXCHANGE|TOKEN"),
        ('{"t": "d", "k": "NSE|22#NSE|2a"}', "token of digits"),
        ('{"t": "c", "uid": "U"}', "needs string 'uid' and 'susertoken'"),
        ('{"t": "a", "uid": 5, "accesstoken": "x"}', "needs string 'uid' and 'accesstoken'"),
    ],
)
def test_a_malformed_client_message_is_refused_saying_why(text, problem):
    with pytest.raises(ProtocolError, match=problem):
        protocol.parse_request(text)


def test_a_heartbeat_and_the_servers_answers_are_the_documented_json():
    assert protocol.parse_request(protocol.heartbeat_message()).kind == "h"
    assert json.loads(protocol.heartbeat_ack()) == {"t": "hk"}
    assert json.loads(protocol.ack_message("c", True, "U")) == {"t": "ck", "s": "OK", "uid": "U"}
    assert json.loads(protocol.ack_message("a", False, "U")) == {
        "t": "ak",
        "s": "NOT_OK",
        "uid": "U",
        "emsg": "Session Expired :  Invalid Session Key",
    }
    assert json.loads(protocol.unsubscribed_message("d", ["NSE|22"])) == {"t": "udk", "k": "NSE|22"}
    tick = json.loads(protocol.tick_message("tf", "NSE|22", {"lp": "1.00"}))
    assert tick == {"t": "tf", "e": "NSE", "tk": "22", "lp": "1.00"}


def test_an_update_changes_only_what_it_carries():
    update = {"t": "tf", "e": "NSE", "tk": "11630", "lp": "118.60", "ft": "1661314259"}
    state = protocol.merge(SNAPSHOT, update)
    assert state == {**SNAPSHOT, "t": "tf", "lp": "118.60", "ft": "1661314259"}
    assert SNAPSHOT["lp"] == "118.55"  # the state merged into is left as it was
    tick = protocol.normalise(state, QUOTE, "NTPC", "NSE", RECEIVED_MS)
    assert tick["ltp"] == 118.60 and tick["high"] == 118.65 and tick["volume"] == 162220


field_names = st.sampled_from(sorted({*DEPTH_SNAPSHOT, "x", "52h"}))
states = st.dictionaries(field_names, st.text(max_size=8), max_size=30)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(states, states)
def test_merging_the_changes_of_a_state_gives_that_state(state, current):
    """What the simulator sends (:func:`changes`) merged into what the client holds
    (:func:`merge`) is what the simulator holds, whatever either holds."""
    sent = protocol.changes(state, current)
    assert protocol.merge(state, sent) == {**state, **current}
    assert all(state.get(name) != value for name, value in sent.items())


@pytest.mark.parametrize("mode", [LTP, QUOTE, DEPTH])
def test_each_modes_tick_has_the_other_brokers_fields_read_from_noren(mode):
    tick = protocol.normalise(DEPTH_SNAPSHOT, mode, "NTPC", "NSE", RECEIVED_MS)
    assert list(tick) == list(TICK_FIELDS[mode])
    assert tick["ltp"] == 118.55
    assert tick["ltt"] == 1_661_314_258_000  # ft, epoch seconds
    assert tick["timestamp"] == RECEIVED_MS
    if mode == LTP:
        return
    assert (tick["open"], tick["high"], tick["low"], tick["close"]) == (117.2, 118.65, 117.1, 117.0)
    assert tick["average_price"] == tick["avg_trade_price"] == 118.39
    assert (tick["volume"], tick["last_trade_quantity"]) == (162220, 15)
    assert (tick["total_buy_quantity"], tick["total_sell_quantity"]) == (90000, 81000)
    assert tick["change"] == 1.55 and tick["change_percent"] == 1.33
    if mode == QUOTE:
        return
    assert (tick["oi"], tick["upper_circuit"], tick["lower_circuit"]) == (0, 140.4, 93.6)
    assert tick["depth"]["buy"][0] == {"price": 118.45, "quantity": 10, "orders": 1}
    assert tick["depth"]["sell"][4] == {"price": 118.75, "quantity": 50, "orders": 5}


def test_fields_noren_did_not_send_are_zero():
    """An index's touchline: a price, a change and a time; no close, no book."""
    index = {"t": "tk", "e": "NSE", "tk": "26000", "lp": "24350.10", "pc": "0.42"}
    tick = protocol.normalise(index, DEPTH, "NIFTY", "NSE_INDEX", RECEIVED_MS)
    assert tick["ltt"] == RECEIVED_MS  # no ft: when it was received
    assert tick["close"] == 0.0 and tick["change"] == 0.0 and tick["change_percent"] == 0.42
    assert tick["volume"] == 0
    assert tick["depth"]["buy"][0] == {"price": 0.0, "quantity": 0, "orders": 0}


def test_a_currency_change_keeps_four_decimals():
    cds = {"e": "CDS", "tk": "1", "pp": "4", "lp": "83.4525", "c": "83.4100", "pc": "0.05"}
    assert protocol.normalise(cds, QUOTE, "USDINR", "CDS", RECEIVED_MS)["change"] == 0.0425


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("lp", 118.5, "'lp' is float, not a string"),
        ("lp", "abc", "'lp' is 'abc', not a number"),
        ("lp", "nan", "not a finite number"),
        ("h", "1e999", "not a finite number"),
        ("v", "-5", "'v' is '-5', not a whole number"),
        ("v", "1.5", "not a whole number"),
        ("ft", "", "not a whole number"),
    ],
)
def test_a_field_that_is_not_what_noren_sends_is_refused_naming_it(field, value, problem):
    with pytest.raises(ProtocolError, match=problem):
        protocol.normalise({**SNAPSHOT, field: value}, QUOTE, "NTPC", "NSE", RECEIVED_MS)


def test_a_tick_message_names_its_scrip_or_is_refused():
    assert protocol.tick_key(SNAPSHOT) == "NSE|11630"
    with pytest.raises(ProtocolError, match="without string 'e' and 'tk'"):
        protocol.tick_key({"t": "tf", "e": "NSE", "tk": 11630})
    with pytest.raises(ProtocolError, match="without a string 't'"):
        protocol.parse('{"t": 5}')
