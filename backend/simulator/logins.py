"""The sessions a simulated broker's REST logins issue, and which tokens are still good.

A broker session ends every day; :meth:`Logins.expire` plays that. Until then the account's
fixed tokens (:class:`~backend.simulator.credentials.SimulatorCredentials`) are good, as if
pasted from a login elsewhere, and so are the newest session's tokens. After
:meth:`Logins.expire` no token issued before it, fixed ones included, is good again; a fresh
login issues good ones.

Each broker's dialect subclasses :class:`Logins` with the sessions its logins issue (see
:attr:`~backend.simulator.dialect.Dialect.logins`).
"""

from __future__ import annotations

import secrets

from backend.simulator.credentials import SimulatorCredentials, same_token


def new_token() -> str:
    return secrets.token_urlsafe(24)


class Logins:
    """The sessions issued to the account of ``credentials``, and the tokens still good.

    A broker's subclass keeps the sessions its logins issue, checks their tokens with
    :meth:`good`, and forgets them in :meth:`expire`.
    """

    def __init__(self, credentials: SimulatorCredentials) -> None:
        self.credentials = credentials
        self._fixed_tokens_good = True

    def good(self, sent: str, issued: str | None, fixed: str, bearer: bool = False) -> bool:
        """Whether ``sent`` is the newest session's token ``issued`` (:obj:`None` before the
        first login) or, until the sessions expire, the account's ``fixed`` one, each compared in
        constant time; with ``bearer``, a ``Bearer`` prefix is not part of the token."""
        tokens = [issued] if issued else []
        if self._fixed_tokens_good:
            tokens.append(fixed)
        return sum(same_token(sent, token, bearer) for token in tokens) > 0

    def expire(self) -> None:
        """End every session: no token issued so far is good any more."""
        self._fixed_tokens_good = False
