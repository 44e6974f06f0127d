"""Angel One: SmartAPI's WebSocket 2.0 (SmartStream), its login, limits and scrip master, and
how the bundled simulator plays them."""

from __future__ import annotations

import http
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from backend.brokers.angel import master
from backend.brokers.angel.adapter import SmartStreamAdapter, SmartStreamCredentials
from backend.brokers.angel.login import AngelSession
from backend.brokers.angel.protocol import HTTP_CONNECTION_LIMIT
from backend.brokers.broker import Broker, BrokerSetting
from backend.security.secret import Secret

if TYPE_CHECKING:
    from backend.simulator.dialect import Dialect

LOGIN = ("ANGEL_PIN", "ANGEL_TOTP_SECRET")


def session(values: Mapping[str, Any]) -> AngelSession:
    """A login with the PIN and TOTP secret when both are set, else the pasted tokens."""
    pasted = None
    if values["ANGEL_FEED_TOKEN"] and values["ANGEL_AUTH_TOKEN"]:
        pasted = SmartStreamCredentials(
            values["ANGEL_CLIENT_CODE"],
            values["ANGEL_API_KEY"],
            values["ANGEL_FEED_TOKEN"],
            values["ANGEL_AUTH_TOKEN"],
        )
    return AngelSession(
        values["ANGEL_LOGIN_URL"],
        values["ANGEL_CLIENT_CODE"],
        values["ANGEL_API_KEY"],
        pin=values["ANGEL_PIN"],
        totp_secret=values["ANGEL_TOTP_SECRET"],
        pasted=pasted,
    )


def simulator_settings(account: Any, rest: str) -> dict[str, str]:
    return {
        "ANGEL_CLIENT_CODE": account.client_code,
        "ANGEL_API_KEY": account.api_key,
        "ANGEL_PIN": account.pin,
        "ANGEL_TOTP_SECRET": account.totp_secret,
        "ANGEL_LOGIN_URL": rest,
    }


def simulator_credentials(account: Any) -> SmartStreamCredentials:
    return SmartStreamCredentials(
        account.client_code,
        Secret(account.api_key),
        Secret(account.feed_token),
        Secret(account.auth_token),
    )


def simulator_dialect() -> Dialect:
    """SmartStream 2.0 and SmartAPI's logins as the simulator plays them."""
    from backend.brokers.angel import simulated_logins, simulated_stream
    from backend.simulator.dialect import Dialect

    return Dialect(
        path=simulated_stream.PATH,
        refusal_status=http.HTTPStatus.UNAUTHORIZED,
        refused=simulated_stream.refused,
        account=simulated_stream.account,
        connection_limit=HTTP_CONNECTION_LIMIT,
        key=SmartStreamAdapter.key,
        exchange_of=simulated_stream.exchange_of,
        connection=simulated_stream.SmartStreamConnection,
        logins=simulated_logins.AngelLogins,
        rest_routes=simulated_logins.routes,
    )


BROKER = Broker(
    name="angel",
    label="Angel One",
    max_connections=3,
    max_symbols=1000,
    settings=(
        BrokerSetting("ANGEL_CLIENT_CODE", "Client code"),
        BrokerSetting("ANGEL_API_KEY", "API key", "secret"),
        BrokerSetting("ANGEL_PIN", "PIN", "secret", required=False),
        BrokerSetting("ANGEL_TOTP_SECRET", "TOTP secret", "secret", required=False),
        BrokerSetting("ANGEL_FEED_TOKEN", "Feed token", "secret", required_unless=LOGIN),
        BrokerSetting("ANGEL_AUTH_TOKEN", "Auth token (JWT)", "secret", required_unless=LOGIN),
        BrokerSetting(
            "ANGEL_LOGIN_URL",
            "SmartAPI URL",
            "web",
            "https://apiconnect.angelone.in",
            required=False,
        ),
        BrokerSetting(
            "ANGEL_WS_URL",
            "SmartStream URL",
            "url",
            "wss://smartapisocket.angelone.in/smart-stream",
            required=False,
        ),
    ),
    url_setting="ANGEL_WS_URL",
    session=session,
    simulator_settings=simulator_settings,
    simulator_credentials=simulator_credentials,
    user_id=lambda session: session.client_code,
    adapter=SmartStreamAdapter,
    check=SmartStreamAdapter.check,
    master_url=master.URL,
    master_path=master.PATH,
    read_master=master.read_master,
    write_master=master.write_master,
    simulator_dialect=simulator_dialect,
)
