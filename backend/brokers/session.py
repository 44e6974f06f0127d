"""A broker account's session: the day's credentials every pooled connection opens with.

Broker sessions end every day, and a broker may end one at any time. A connection refused
for its session (:class:`~backend.brokers.errors.SessionExpiredError`) asks
:meth:`BrokerSession.renewed` for newer credentials. Every connection refused for the same
session shares one renewal, so the broker sees one login however many connections were refused.
A renewal that fails for the network or the broker's server is tried again after a capped,
growing delay: one attempt per step, never a burst of logins.

A login the broker refuses for its settings (:class:`CredentialError`: a wrong PIN, TOTP secret,
API key ...) is not tried again by itself, as brokers lock an account after a few wrong PINs. A
session that cannot renew itself (pasted tokens, a broker without unattended login, or settings
the broker refused) says what the trader must do, and nothing logs in to the broker until the
backend is started on a new session or new settings.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import ssl
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import httpx

log = logging.getLogger("feedpool.session")

RENEW_FIRST_DELAY = 1.0
RENEW_MAX_DELAY = 300.0


@functools.cache
def login_tls() -> ssl.SSLContext:
    """The one TLS context of every login's HTTP client (``httpx.AsyncClient(verify=...)``).

    A client builds its own by default, every CA certificate loaded: about 0.8 MB outside
    Python's heap. A client that has made a request is left in reference cycles, which the
    backend's collector (:mod:`backend.runtime.collector`) breaks only seldom, so a context per
    login kept 0.8 MB per renewed session for as long."""
    return httpx.create_ssl_context()


class LoginError(Exception):
    """The broker refused a login or a renewal; the text is the broker's reason, no secret."""


class CredentialError(LoginError):
    """The broker refused the login for the settings it was given; the text names the settings
    to check. Trying again cannot help, and wrong PINs lock the account."""


class BrokerSession(ABC):
    """The credentials of one broker account, renewed when the broker refuses them.

    Subclasses say how a session begins (:meth:`_begin`) and how it is renewed
    (:meth:`_renew`, which raises :class:`LoginError`); :attr:`can_renew` says whether it can be
    renewed without the trader.
    """

    #: The broker's name as people know it, for log lines.
    label = "the broker"
    #: Whether :meth:`_renew` can log in without the trader.
    can_renew = False

    def __init__(
        self, *, first_delay: float = RENEW_FIRST_DELAY, max_delay: float = RENEW_MAX_DELAY
    ) -> None:
        self.credentials: Any = None
        #: Why the session is not usable now, as the broker said it; empty while it is.
        self.problem = ""
        #: Told the problem each time a renewal fails.
        self.problem_listeners: list[Callable[[str], None]] = []
        self._delays = (first_delay, max_delay)
        self._renewal: asyncio.Task[Any] | None = None
        #: What the broker said of the settings when it refused them; empty until then.
        self._settings_refused = ""
        #: Completed by :meth:`provide`, while a renewal waits for the trader.
        self._provided: asyncio.Future[Any] | None = None

    @abstractmethod
    async def _begin(self) -> Any:
        """The first credentials: a login, or those the settings hold."""

    async def _renew(self, refused: Any) -> Any:
        """Credentials to replace ``refused``; :class:`LoginError` when the broker says no."""
        raise LoginError(f"{self.label} ended the session; log in again")

    async def _login(self) -> Any:
        """A fresh login with the stored credentials, for a session that has one."""
        raise LoginError(f"{self.label} has no login with stored credentials")

    async def _login_else(self, pasted: Any, what: str) -> Any:
        """A fresh login (:meth:`_login`); when it fails, ``pasted``, the credentials pasted into
        the settings (``what`` names them), while they last. A login the broker refused for its
        settings is not tried again by itself."""
        try:
            return await self._login()
        except LoginError as exc:
            if pasted is None:
                raise
            if isinstance(exc, CredentialError):
                log.error("%s; using %s while they last", exc, what)
                self._stop_logging_in(exc)
            else:
                log.warning("%s: %s; using %s", self.label, exc, what)
            return pasted

    async def begin(self) -> None:
        """Have the first credentials; :class:`LoginError` if the broker refuses the login."""
        self.credentials = await self._begin()

    async def renewed(self, refused: Any) -> Any:
        """Credentials newer than ``refused``, which the broker refused.

        Returns at once when another connection has renewed them already. Otherwise it waits for
        the one renewal all refused connections share, retried until it works; for ever when the
        session cannot renew itself, or the broker refused its settings.
        """
        if self.credentials is not refused:
            return self.credentials
        if self._renewal is None or self._renewal.done():
            self._renewal = asyncio.get_running_loop().create_task(self._renew_until_done(refused))
        return await asyncio.shield(self._renewal)

    async def close(self) -> None:
        """Stop renewing."""
        if self._renewal is not None:
            self._renewal.cancel()
            await asyncio.gather(self._renewal, return_exceptions=True)

    def keep_trying(self, failure: LoginError) -> None:
        """The first login failed with ``failure``: try again in the background, after a wait,
        unless the broker refused the settings."""
        self._renewal = asyncio.get_running_loop().create_task(
            self._renew_until_done(None, failure)
        )

    def _stop_logging_in(self, refusal: CredentialError) -> None:
        """The broker refused the settings: log in no more by itself; a renewal says ``refusal``."""
        self.can_renew = False
        self._settings_refused = str(refusal)

    async def _renew_until_done(self, refused: Any, failure: LoginError | None = None) -> Any:
        """Renew until it works, after ``failure`` (the first login's) if there was one.

        A failure of the network or the broker's server is tried again after a growing wait;
        a refusal of the settings is logged once and not tried again. A session that cannot
        renew itself waits for ever: the backend starts again on the trader's new session or
        settings."""
        first, cap = self._delays
        failed = 0
        while self.can_renew:
            if isinstance(failure, CredentialError):
                log.error("%s", failure)
                self._stop_logging_in(failure)
                break
            if failure is not None:
                failed += 1
                self._report(str(failure))
                delay = min(cap, first * 2 ** (failed - 1)) * random.uniform(0.9, 1.1)
                log.warning("%s: %s; trying again in %.0f s", self.label, failure, delay)
                await asyncio.sleep(delay)
            try:
                credentials = await self._renew(refused)
            except LoginError as exc:
                failure = exc
                continue
            self.credentials = credentials
            self.problem = ""
            log.info("%s: new session", self.label)
            return credentials
        self._report(self._settings_refused or f"{self.label} ended the session; log in again")
        self._provided = asyncio.get_running_loop().create_future()
        return await self._provided

    def provide(self, credentials: Any) -> None:
        """The trader logged in again (the day's new token): the refused connections reopen
        with ``credentials``."""
        self.credentials = credentials
        self.problem = ""
        self._settings_refused = ""
        log.info("%s: new session from a login", self.label)
        if self._provided is not None and not self._provided.done():
            self._provided.set_result(credentials)

    def _report(self, problem: str) -> None:
        self.problem = problem
        for listener in self.problem_listeners:
            listener(problem)


class FixedSession(BrokerSession):
    """Credentials the settings hold (pasted tokens): renewed only by :meth:`replace`."""

    def __init__(self, credentials: Any, label: str, **options: float) -> None:
        super().__init__(**options)
        self.credentials = credentials
        self.label = label

    async def _begin(self) -> Any:
        return self.credentials
