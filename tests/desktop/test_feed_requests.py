"""The feed client's requests: bulk subscribes grouped by mode and chunked, unsubscribes by mode.

Its connection to a real backend is exercised in ``test_app_backend.py``.
"""

from __future__ import annotations

import json

from backend.instruments.symbol_lists import WatchEntry
from desktop.link.feed_client import CHUNK, subscribe_requests, unsubscribe_requests


def test_subscribe_one_request_per_mode():
    requests = [
        json.loads(request)
        for request in subscribe_requests(
            [WatchEntry("SBIN", "NSE", 1), WatchEntry("TCS", "NSE"), WatchEntry("INFY", "NSE", 1)]
        )
    ]
    assert requests == [
        {
            "action": "subscribe",
            "symbols": [
                {"symbol": "SBIN", "exchange": "NSE"},
                {"symbol": "INFY", "exchange": "NSE"},
            ],
            "mode": 1,
        },
        {"action": "subscribe", "symbols": [{"symbol": "TCS", "exchange": "NSE"}], "mode": 2},
    ]


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
