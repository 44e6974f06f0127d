"""Who may connect: the accepted account, the handshake's header check, secrets kept out of logs."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from websockets.datastructures import Headers

from backend.smartstream.protocol import HTTP_AUTH_ERRORS

BEARER = "Bearer "


@dataclass(frozen=True, slots=True)
class SimulatorCredentials:
    """The one account the simulator accepts.

    The defaults are fixed, public test values: client code ``FEEDPOOL``, API key
    ``simulator-api-key``, feed token ``simulator-feed-token``, auth token ``simulator-auth-token``.
    Only the client code shows in ``repr``.
    """

    client_code: str = "FEEDPOOL"
    api_key: str = field(default="simulator-api-key", repr=False)
    feed_token: str = field(default="simulator-feed-token", repr=False)
    auth_token: str = field(default="simulator-auth-token", repr=False)

    def rejected_header(self, headers: Headers) -> str | None:
        """The first header, in the order of ``HTTP_AUTH_ERRORS``, that is missing or wrong.

        ``Authorization`` may carry the auth token with or without a ``Bearer`` prefix. A header
        sent more than once is wrong. :obj:`None` means the request is authenticated.
        """
        expected = {
            "Authorization": self.auth_token,
            "x-client-code": self.client_code,
            "x-api-key": self.api_key,
            "x-feed-token": self.feed_token,
        }
        for name in HTTP_AUTH_ERRORS:
            values = headers.get_all(name)
            if len(values) != 1:
                return name
            value = values[0].removeprefix(BEARER) if name == "Authorization" else values[0]
            # Header values arrive decoded as ISO-8859-1; compare the bytes that were sent.
            if not hmac.compare_digest(value.encode("iso-8859-1"), expected[name].encode("utf-8")):
                return name
        return None
