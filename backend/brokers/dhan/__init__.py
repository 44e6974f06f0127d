"""Dhan: DhanHQ v2's Live Market Feed, its access token and consent login, its limits and
scrip master, and how the bundled simulator plays them."""

from __future__ import annotations

import http
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from backend.brokers.broker import Broker, BrokerSetting
from backend.brokers.dhan import consent, master
from backend.brokers.dhan.adapter import (
    LABEL,
    MAX_CONNECTIONS,
    MAX_INSTRUMENTS,
    DhanAdapter,
    DhanCredentials,
)
from backend.brokers.dhan.login import API_ROOT, DhanSession
from backend.brokers.dhan.protocol import DISCONNECT_REASONS, TOO_MANY_CONNECTIONS
from backend.security.secret import Secret

if TYPE_CHECKING:
    from backend.simulator.dialect import Dialect


def session(values: Mapping[str, Any]) -> DhanSession:
    """The day's access token, pasted or saved by the browser login, renewed while it lives."""
    return DhanSession(
        values["DHAN_API_URL"], values["DHAN_CLIENT_ID"], values["DHAN_ACCESS_TOKEN"]
    )


def simulator_settings(account: Any, rest: str) -> dict[str, str]:
    return {
        "DHAN_CLIENT_ID": account.client_code,
        "DHAN_ACCESS_TOKEN": account.access_token,
        "DHAN_API_KEY": account.api_key,
        "DHAN_API_SECRET": account.api_secret,
        "DHAN_REDIRECT_URL": account.redirect_url,
        "DHAN_AUTH_URL": rest,
        "DHAN_API_URL": f"{rest}/v2",
    }


def simulator_credentials(account: Any) -> DhanCredentials:
    return DhanCredentials(account.client_code, Secret(account.access_token))


def simulator_dialect() -> Dialect:
    """Dhan's Live Market Feed and its REST logins as the simulator plays them."""
    from backend.brokers.dhan import simulated_logins, simulated_stream
    from backend.simulator.dialect import Dialect

    return Dialect(
        path=simulated_stream.PATH,
        refusal_status=http.HTTPStatus.BAD_REQUEST,
        refused=simulated_stream.refused,
        account=simulated_stream.account,
        connection_limit=DISCONNECT_REASONS[TOO_MANY_CONNECTIONS],
        key=DhanAdapter.key,
        exchange_of=simulated_stream.exchange_of,
        connection=simulated_stream.DhanFeedConnection,
        logins=simulated_logins.DhanLogins,
        rest_routes=simulated_logins.routes,
        closes_oldest=True,
    )


BROKER = Broker(
    name="dhan",
    label=LABEL,
    max_connections=MAX_CONNECTIONS,
    max_symbols=MAX_INSTRUMENTS,
    settings=(
        BrokerSetting("DHAN_CLIENT_ID", "Client ID"),
        BrokerSetting("DHAN_ACCESS_TOKEN", "Access token", "secret", from_login=True),
        BrokerSetting("DHAN_API_KEY", "API key", "secret", required=False),
        BrokerSetting("DHAN_API_SECRET", "API secret", "secret", required=False),
        BrokerSetting(
            "DHAN_REDIRECT_URL",
            "Redirect URL",
            "web",
            "http://127.0.0.1:5010/dhan/callback",
            required=False,
        ),
        BrokerSetting("DHAN_AUTH_URL", "Login URL", "web", consent.AUTH_ROOT, required=False),
        BrokerSetting("DHAN_API_URL", "DhanHQ API URL", "web", API_ROOT, required=False),
        BrokerSetting(
            "DHAN_WS_URL", "Live Market Feed URL", "url", "wss://api-feed.dhan.co", required=False
        ),
    ),
    url_setting="DHAN_WS_URL",
    session=session,
    simulator_settings=simulator_settings,
    simulator_credentials=simulator_credentials,
    user_id=lambda session: session.client_id,
    adapter=DhanAdapter,
    check=DhanAdapter.check,
    master_url=master.URL,
    master_path=master.PATH,
    read_master=master.read_master,
    write_master=master.write_master,
    simulator_dialect=simulator_dialect,
    browser_login=consent.BROWSER_LOGIN,
)
