"""Browser logins driven through the simulator's login pages, as a trader's browser would."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from backend.brokers import BROKERS
from backend.runtime.settings import Settings
from backend.simulator import SimulatorCredentials


def kite_values(account: SimulatorCredentials, rest: str) -> Mapping[str, Any]:
    """The settings of a Kite login to the simulator's ``account``, under its REST root ``rest``."""
    return (
        Settings()
        .replace(
            KITE_API_KEY=account.api_key,
            KITE_API_SECRET=account.api_secret,
            KITE_LOGIN_URL=f"{rest}/connect/login",
            KITE_API_URL=rest,
        )
        .broker_values
    )


async def kite_login(account: SimulatorCredentials, rest: str) -> str:
    """A Kite login to the simulator's ``account`` through its login page, under its REST root
    ``rest``: the day's new access token."""
    login = BROKERS["zerodha"].browser_login
    values = kite_values(account, rest)
    redirect = urlsplit(account.redirect_url)
    async with httpx.AsyncClient() as browser:
        url = await login.page(values)
        while True:  # follow the login page's redirects up to the app's redirect URL
            answer = await browser.get(url)
            url = str(answer.next_request.url) if answer.next_request else ""
            if not url or urlsplit(url).netloc == redirect.netloc:
                break
    result = await login.finish(values, url)
    return result.saved["KITE_ACCESS_TOKEN"]
