"""Zerodha Kite Connect: the KiteTicker feed, its limits, credentials and instruments CSV."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backend.brokers.broker import Broker, BrokerSetting
from backend.brokers.zerodha import master
from backend.brokers.zerodha.adapter import MAX_INSTRUMENTS, KiteAdapter, KiteCredentials
from backend.secret import Secret


def credentials(values: Mapping[str, Any]) -> KiteCredentials:
    return KiteCredentials(values["KITE_API_KEY"], values["KITE_ACCESS_TOKEN"])


def simulator_credentials(account: Any) -> KiteCredentials:
    return KiteCredentials(
        Secret(account.api_key), Secret(account.access_token), account.client_code
    )


BROKER = Broker(
    name="zerodha",
    label="Zerodha Kite",
    max_connections=3,
    max_symbols=MAX_INSTRUMENTS,
    settings=(
        BrokerSetting("KITE_API_KEY", "API key", "secret"),
        BrokerSetting("KITE_ACCESS_TOKEN", "Access token", "secret"),
        BrokerSetting(
            "KITE_WS_URL", "KiteTicker URL", "url", "wss://ws.kite.trade", required=False
        ),
    ),
    url_setting="KITE_WS_URL",
    credentials=credentials,
    simulator_credentials=simulator_credentials,
    user_id=lambda credentials: credentials.user_id or "zerodha",
    adapter=KiteAdapter,
    check=KiteAdapter.check,
    master_url=master.URL,
    master_path=master.PATH,
    read_master=master.read_master,
    write_master=master.write_master,
)
