"""The OpenAlgo Python SDK code that streams a symbol from the backend, ready to paste.

It uses the SDK's ``api(api_key=..., ws_url=...)``, ``connect()`` and ``subscribe_ltp(...,
on_data_received=...)``, as OpenAlgo's SDK does against OpenAlgo; FeedPool serves the same API, so
the code runs unchanged (``tests/desktop/test_connect_strategy.py`` runs it against a real
backend). The key may be shown masked: the dialog shows the masked text and copies the real one.
"""

from __future__ import annotations

import json

INSTALL = "pip install openalgo"
#: The symbol the code subscribes: one every broker's instrument master has.
SYMBOL, EXCHANGE = "SBIN", "NSE"


def _quoted(text: str) -> str:
    """``text`` as a Python string literal in double quotes."""
    return json.dumps(text, ensure_ascii=False)


def sdk_snippet(url: str, key: str) -> str:
    """The code, for the API at ``url`` with ``key``."""
    return f'''# {INSTALL}
import time

from openalgo import api

client = api(api_key={_quoted(key)}, ws_url={_quoted(url)})
if not client.connect():
    raise SystemExit({_quoted("Could not connect to FeedPool at " + url)})


def on_tick(message):
    print(message["exchange"], message["symbol"], message["data"]["ltp"], flush=True)


client.subscribe_ltp([{{"exchange": "{EXCHANGE}", "symbol": "{SYMBOL}"}}], on_data_received=on_tick)
try:
    while True:
        time.sleep(1)
except KeyboardInterrupt:
    client.disconnect()
'''
