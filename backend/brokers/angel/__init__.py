"""Angel One: SmartAPI's WebSocket 2.0 (SmartStream), its limits, credentials and scrip master."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backend.brokers.angel import master
from backend.brokers.angel.adapter import SmartStreamAdapter, SmartStreamCredentials
from backend.brokers.broker import Broker, BrokerSetting
from backend.secret import Secret


def credentials(values: Mapping[str, Any]) -> SmartStreamCredentials:
    return SmartStreamCredentials(
        values["ANGEL_CLIENT_CODE"],
        values["ANGEL_API_KEY"],
        values["ANGEL_FEED_TOKEN"],
        values["ANGEL_AUTH_TOKEN"],
    )


def simulator_credentials(account: Any) -> SmartStreamCredentials:
    return SmartStreamCredentials(
        account.client_code,
        Secret(account.api_key),
        Secret(account.feed_token),
        Secret(account.auth_token),
    )


BROKER = Broker(
    name="angel",
    label="Angel One",
    max_connections=3,
    max_symbols=1000,
    settings=(
        BrokerSetting("ANGEL_CLIENT_CODE", "Client code"),
        BrokerSetting("ANGEL_API_KEY", "API key", "secret"),
        BrokerSetting("ANGEL_FEED_TOKEN", "Feed token", "secret"),
        BrokerSetting("ANGEL_AUTH_TOKEN", "Auth token", "secret"),
        BrokerSetting(
            "ANGEL_WS_URL",
            "SmartStream URL",
            "url",
            "wss://smartapisocket.angelone.in/smart-stream",
            required=False,
        ),
    ),
    url_setting="ANGEL_WS_URL",
    credentials=credentials,
    simulator_credentials=simulator_credentials,
    user_id=lambda credentials: credentials.client_code,
    adapter=SmartStreamAdapter,
    check=SmartStreamAdapter.check,
    master_url=master.URL,
    master_path=master.PATH,
    read_master=master.read_master,
    write_master=master.write_master,
)
