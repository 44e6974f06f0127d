"""Who may connect: the one account the simulator accepts, and how its tokens are compared."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

BEARER = "Bearer "


@dataclass(frozen=True, slots=True)
class SimulatorCredentials:
    """The one account the simulator accepts, with what each broker asks for.

    The defaults are fixed, public test values: client code ``FEEDPOOL``, API key
    ``simulator-api-key``, feed token ``simulator-feed-token``, auth token
    ``simulator-auth-token`` (SmartStream), access token ``simulator-access-token`` (Kite). Only
    the client code shows in ``repr``.
    """

    client_code: str = "FEEDPOOL"
    api_key: str = field(default="simulator-api-key", repr=False)
    feed_token: str = field(default="simulator-feed-token", repr=False)
    auth_token: str = field(default="simulator-auth-token", repr=False)
    access_token: str = field(default="simulator-access-token", repr=False)


def same_token(sent: str, expected: str, bearer: bool = False) -> bool:
    """Whether a credential sent in a header is the expected one, in constant time.

    With ``bearer``, a ``Bearer`` prefix on either side is not part of the token. Header values
    arrive decoded as ISO-8859-1: the bytes that were sent are compared.
    """
    if bearer:
        sent, expected = sent.removeprefix(BEARER), expected.removeprefix(BEARER)
    return hmac.compare_digest(sent.encode("iso-8859-1"), expected.encode("utf-8"))
