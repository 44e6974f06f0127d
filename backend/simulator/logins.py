"""The sessions the simulator's REST logins issue, and which tokens are still good.

A broker session ends every day; :meth:`Logins.expire` plays that. Until then the account's
fixed tokens (:class:`~backend.simulator.credentials.SimulatorCredentials`) are good, as if
pasted from a login elsewhere, and so are the newest session's tokens:

- Angel One: each login issues a JWT, a refresh token and a feed token. The refresh token
  renews the JWT and the feed token until the sessions expire; a new login replaces the
  session, and the older one's tokens are no longer good.
- Zerodha Kite: each login issues a request token, good for one exchange for an access token;
  the newest access token is good.

After :meth:`Logins.expire` no token issued before it, fixed ones included, is good again; a
fresh login issues good ones.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from backend.simulator.credentials import SimulatorCredentials, same_token


def new_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class AngelSession:
    """The tokens of one Angel One login, or of its renewal."""

    jwt: str = field(default_factory=new_token, repr=False)
    refresh_token: str = field(default_factory=new_token, repr=False)
    feed_token: str = field(default_factory=new_token, repr=False)


def _good(sent: str, tokens: list[str], bearer: bool = False) -> bool:
    """Whether ``sent`` is one of ``tokens``, each compared in constant time."""
    return sum(same_token(sent, token, bearer) for token in tokens) > 0


class Logins:
    """The sessions issued to the account of ``credentials``, and the tokens still good."""

    def __init__(self, credentials: SimulatorCredentials) -> None:
        self.credentials = credentials
        self._fixed_tokens_good = True
        #: How many Angel One logins were asked for, refused ones included.
        self.angel_login_requests = 0
        self._angel: AngelSession | None = None
        self._request_tokens: set[str] = set()
        self._access_token: str | None = None

    # Angel One

    def log_in_angel(self) -> AngelSession:
        """A new session, replacing the one before."""
        self._angel = AngelSession()
        return self._angel

    def renew_angel(self, refresh_token: str) -> AngelSession | None:
        """A new JWT and feed token for the session of ``refresh_token``; None if not good."""
        session = self._angel
        if session is None or not same_token(refresh_token, session.refresh_token):
            return None
        self._angel = AngelSession(refresh_token=session.refresh_token)
        return self._angel

    def good_jwt(self, sent: str) -> bool:
        """Whether ``sent`` is a good JWT, with or without its ``Bearer`` prefix."""
        good = [self._angel.jwt] if self._angel else []
        if self._fixed_tokens_good:
            good.append(self.credentials.auth_token)
        return _good(sent, good, bearer=True)

    def good_feed_token(self, sent: str) -> bool:
        good = [self._angel.feed_token] if self._angel else []
        if self._fixed_tokens_good:
            good.append(self.credentials.feed_token)
        return _good(sent, good)

    # Zerodha Kite

    def log_in_kite(self) -> str:
        """A new request token, good for one :meth:`redeem`."""
        token = new_token()
        self._request_tokens.add(token)
        return token

    def redeem(self, request_token: str) -> str | None:
        """The access token of a new session for ``request_token``; None if it is not good."""
        for token in self._request_tokens:
            if same_token(request_token, token):
                self._request_tokens.discard(token)
                self._access_token = new_token()
                return self._access_token
        return None

    def good_access_token(self, sent: str) -> bool:
        good = [self._access_token] if self._access_token else []
        if self._fixed_tokens_good:
            good.append(self.credentials.access_token)
        return _good(sent, good)

    def expire(self) -> None:
        """End every session: no token issued so far is good any more."""
        self._fixed_tokens_good = False
        self._angel = None
        self._request_tokens.clear()
        self._access_token = None
