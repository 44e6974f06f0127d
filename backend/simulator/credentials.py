"""Who may connect: the one account the simulator accepts, and how its tokens are compared."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

import pyotp

BEARER = "Bearer "
TOTP_SECRET_RULE = "base32 (letters A-Z and digits 2-7), 23 characters or more"


@dataclass(frozen=True, slots=True)
class SimulatorCredentials:
    """The one account the simulator accepts, with what each broker asks for.

    The defaults are fixed, public test values:

    - client code ``FEEDPOOL`` and API key ``simulator-api-key`` (both brokers);
    - Angel One: PIN ``1234``, TOTP secret ``FEEDPOOLSIMULATORTOTPSECRET2345A`` (base32), and
      the fixed session tokens feed token ``simulator-feed-token`` and auth token (JWT)
      ``simulator-auth-token``;
    - Zerodha Kite: API secret ``simulator-api-secret``, the app's redirect URL
      ``http://127.0.0.1:5010/kite/callback``, and the fixed access token
      ``simulator-access-token``.
    - Dhan: the client code as the client ID, and Kite's API key and secret (the API key's
      ``app_id`` and ``app_secret``), redirect URL and fixed access token.
    - Noren (Shoonya, Flattrade, Zebu): the client code as the user ID, Kite's fixed access
      token as the session token, redirect URL and API secret (Flattrade's API key and secret,
      the OAuth secret key, QuickAuth's app key), the OAuth client ID ``FEEDPOOL_U``, and for
      QuickAuth the password ``simulator-password``, Angel's TOTP secret and the vendor code
      ``FEEDPOOL_U``.

    The fixed tokens work from the start, as if pasted from a login elsewhere, until the
    sessions expire; a REST login issues fresh ones. Only the client code shows in ``repr``.
    :exc:`ValueError` if the TOTP secret is not one (:data:`TOTP_SECRET_RULE`).
    """

    client_code: str = "FEEDPOOL"
    api_key: str = field(default="simulator-api-key", repr=False)
    feed_token: str = field(default="simulator-feed-token", repr=False)
    auth_token: str = field(default="simulator-auth-token", repr=False)
    access_token: str = field(default="simulator-access-token", repr=False)
    pin: str = field(default="1234", repr=False)
    totp_secret: str = field(default="FEEDPOOLSIMULATORTOTPSECRET2345A", repr=False)
    api_secret: str = field(default="simulator-api-secret", repr=False)
    redirect_url: str = field(default="http://127.0.0.1:5010/kite/callback", repr=False)
    password: str = field(default="simulator-password", repr=False)
    vendor_code: str = field(default="FEEDPOOL_U", repr=False)
    oauth_client_id: str = field(default="FEEDPOOL_U", repr=False)

    def __post_init__(self) -> None:
        if not is_totp_secret(self.totp_secret):
            raise ValueError(f"the TOTP secret must be {TOTP_SECRET_RULE}")


def is_totp_secret(secret: str) -> bool:
    """Whether ``secret`` is a TOTP secret codes can be made from: :data:`TOTP_SECRET_RULE`."""
    try:
        pyotp.TOTP(secret).now()
    except ValueError:  # binascii.Error too: not base32, or too short
        return False
    return True


def same_token(sent: str, expected: str, bearer: bool = False) -> bool:
    """Whether a credential sent in a header or a body is the expected one, in constant time.

    With ``bearer``, a ``Bearer`` prefix on either side is not part of the token. Header values
    arrive decoded as UTF-8 with surrogate escapes: the bytes that were sent are compared.
    """
    if bearer:
        sent, expected = sent.removeprefix(BEARER), expected.removeprefix(BEARER)
    return hmac.compare_digest(
        sent.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape")
    )
