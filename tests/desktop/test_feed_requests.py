"""The feed client's requests: bulk subscribes in the watchlist's order (a request per run of one
mode) and chunked, unsubscribes by mode, and the one line of failed unsubscriptions.

Its connection to a real backend is exercised in ``test_app_backend.py``.
"""

from __future__ import annotations

import json

from backend.instruments.symbol_lists import WatchEntry
from desktop.link.feed_client import (
    CHUNK,
    subscribe_requests,
    unsubscribe_failures,
    unsubscribe_requests,
)


def test_subscribe_keeps_the_watchlist_order_a_request_per_run_of_one_mode():
    entries = [
        WatchEntry("SBIN", "NSE", 1),
        WatchEntry("RELIANCE", "NSE", 1),
        WatchEntry("TCS", "NSE"),
        WatchEntry("INFY", "NSE", 1),
    ]
    requests = [json.loads(request) for request in subscribe_requests(entries)]
    assert [(request["mode"], request["symbols"]) for request in requests] == [
        (1, [{"symbol": "SBIN", "exchange": "NSE"}, {"symbol": "RELIANCE", "exchange": "NSE"}]),
        (2, [{"symbol": "TCS", "exchange": "NSE"}]),
        (1, [{"symbol": "INFY", "exchange": "NSE"}]),
    ]
    assert all(request["action"] == "subscribe" for request in requests)


def test_large_lists_are_chunked():
    entries = [WatchEntry(f"S{number}", "NFO") for number in range(CHUNK * 2 + 1)]
    sizes = [len(json.loads(request)["symbols"]) for request in subscribe_requests(entries)]
    assert sizes == [CHUNK, CHUNK, 1]
    sizes = [len(json.loads(request)["symbols"]) for request in unsubscribe_requests(entries)]
    assert sizes == [CHUNK, CHUNK, 1]


def test_unsubscribe_names_each_symbols_mode():
    [request] = unsubscribe_requests([WatchEntry("SBIN", "NSE", 3), WatchEntry("TCS", "BSE")])
    assert json.loads(request) == {
        "action": "unsubscribe",
        "symbols": [
            {"symbol": "SBIN", "exchange": "NSE", "mode": 3},
            {"symbol": "TCS", "exchange": "BSE", "mode": 2},
        ],
    }


def test_nothing_to_ask_for_sends_nothing():
    assert subscribe_requests([]) == []
    assert unsubscribe_requests([]) == []


def test_failed_unsubscriptions_are_one_readable_line():
    failed = [
        {
            "symbol": f"S{number}",
            "exchange": "NSE",
            "mode": 2,
            "status": "error",
            "code": "BROKER_ERROR" if number else "NOT_SUBSCRIBED",
            "message": f"S{number} on NSE is not subscribed in mode 2",
            "broker": "simulator",
        }
        for number in range(7)
    ]
    assert unsubscribe_failures(failed) == (
        "7 symbols could not be unsubscribed (NSE:S0, NSE:S1, NSE:S2, NSE:S3, NSE:S4 and 2 more):"
        " 1 NOT_SUBSCRIBED, 6 BROKER_ERROR; the first: S0 on NSE is not subscribed in mode 2"
    )
