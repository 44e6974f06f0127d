"""Zerodha Kite Connect: the KiteTicker feed, its login, limits and instruments CSV, and how the
bundled simulator plays them."""

from __future__ import annotations

import http
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from backend.brokers.broker import Broker, BrokerSetting
from backend.brokers.session import FixedSession
from backend.brokers.zerodha import login, master
from backend.brokers.zerodha.adapter import MAX_INSTRUMENTS, KiteAdapter, KiteCredentials
from backend.security.secret import Secret

if TYPE_CHECKING:
    from backend.simulator.dialect import Dialect


def session(values: Mapping[str, Any]) -> FixedSession:
    """The day's access token: Kite has no unattended login, the trader logs in each day."""
    credentials = KiteCredentials(values["KITE_API_KEY"], values["KITE_ACCESS_TOKEN"])
    return FixedSession(credentials, login.LABEL)


def simulator_settings(account: Any, rest: str) -> dict[str, str]:
    return {
        "KITE_API_KEY": account.api_key,
        "KITE_ACCESS_TOKEN": account.access_token,
        "KITE_API_SECRET": account.api_secret,
        "KITE_REDIRECT_URL": account.redirect_url,
        "KITE_LOGIN_URL": f"{rest}/connect/login",
        "KITE_API_URL": rest,
    }


def simulator_credentials(account: Any) -> KiteCredentials:
    return KiteCredentials(
        Secret(account.api_key), Secret(account.access_token), account.client_code
    )


def simulator_dialect() -> Dialect:
    """KiteTicker and Kite Connect's logins as the simulator plays them."""
    from backend.brokers.zerodha import simulated_logins, simulated_stream
    from backend.simulator.dialect import Dialect

    return Dialect(
        path=simulated_stream.PATH,
        refusal_status=http.HTTPStatus.FORBIDDEN,
        refused=simulated_stream.refused,
        account=simulated_stream.account,
        connection_limit="Too many connections",
        key=KiteAdapter.key,
        exchange_of=simulated_stream.exchange_of,
        connection=simulated_stream.KiteTickerConnection,
        logins=simulated_logins.KiteLogins,
        rest_routes=simulated_logins.routes,
    )


BROKER = Broker(
    name="zerodha",
    label=login.LABEL,
    max_connections=3,
    max_symbols=MAX_INSTRUMENTS,
    settings=(
        BrokerSetting("KITE_API_KEY", "API key", "secret"),
        BrokerSetting("KITE_API_SECRET", "API secret", "secret", required=False),
        BrokerSetting("KITE_ACCESS_TOKEN", "Access token", "secret", from_login=True),
        BrokerSetting(
            "KITE_REDIRECT_URL",
            "Redirect URL",
            "web",
            "http://127.0.0.1:5010/kite/callback",
            required=False,
        ),
        BrokerSetting("KITE_LOGIN_URL", "Login page", "web", login.LOGIN_PAGE, required=False),
        BrokerSetting("KITE_API_URL", "Kite Connect URL", "web", login.API_ROOT, required=False),
        BrokerSetting(
            "KITE_WS_URL", "KiteTicker URL", "url", "wss://ws.kite.trade", required=False
        ),
    ),
    url_setting="KITE_WS_URL",
    session=session,
    simulator_settings=simulator_settings,
    simulator_credentials=simulator_credentials,
    user_id=lambda session: session.credentials.user_id or "zerodha",
    adapter=KiteAdapter,
    check=KiteAdapter.check,
    master_url=master.URL,
    master_path=master.PATH,
    read_master=master.read_master,
    write_master=master.write_master,
    simulator_dialect=simulator_dialect,
    browser_login=login.BROWSER_LOGIN,
)
