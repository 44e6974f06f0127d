"""A broker account's session: the day's credentials every pooled connection opens with.

Broker sessions end every day, and a broker may end one at any time. A connection refused
for its session (:class:`~backend.adapter.SessionExpiredError`) asks
:meth:`BrokerSession.renewed` for newer credentials. Every connection refused for the same
session shares one renewal, so the broker sees one login however many connections were refused.
A failed renewal is tried again after a capped, growing delay: one attempt per step, never a
burst of logins.

A session that cannot renew itself (pasted tokens, or a broker without unattended login) says
that the trader must log in again, and nothing dials the broker until the backend is started on
a new session.
"""

from __future__ import annotations

import asyncio
import logging
import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

log = logging.getLogger("feedpool.session")

RENEW_FIRST_DELAY = 1.0
RENEW_MAX_DELAY = 300.0


class LoginError(Exception):
    """The broker refused a login or a renewal; the text is the broker's reason, no secret."""


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

    @abstractmethod
    async def _begin(self) -> Any:
        """The first credentials: a login, or those the settings hold."""

    async def _renew(self, refused: Any) -> Any:
        """Credentials to replace ``refused``; :class:`LoginError` when the broker says no."""
        raise LoginError(f"{self.label} ended the session; log in again")

    async def begin(self) -> None:
        """Have the first credentials; :class:`LoginError` if the broker refuses the login."""
        self.credentials = await self._begin()

    async def renewed(self, refused: Any) -> Any:
        """Credentials newer than ``refused``, which the broker refused.

        Returns at once when another connection has renewed them already. Otherwise it waits for
        the one renewal all refused connections share, retried until it works.
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

    def keep_trying(self, problem: str) -> None:
        """The first login failed with ``problem``: try again in the background, after a wait."""
        self._report(problem)
        self._renewal = asyncio.get_running_loop().create_task(
            self._renew_until_done(None, failed=1)
        )

    async def _renew_until_done(self, refused: Any, failed: int = 0) -> Any:
        """Renew until it works; ``failed`` attempts so far. A session that cannot renew
        itself waits for ever: the backend starts again on the trader's new session."""
        if not self.can_renew:
            self._report(f"{self.label} ended the session; log in again")
            await asyncio.get_running_loop().create_future()
        first, cap = self._delays
        while True:
            if failed:
                delay = min(cap, first * 2 ** (failed - 1)) * random.uniform(0.9, 1.1)
                log.warning("%s: %s; trying again in %.0f s", self.label, self.problem, delay)
                await asyncio.sleep(delay)
            try:
                credentials = await self._renew(refused)
            except LoginError as exc:
                failed += 1
                self._report(str(exc))
                continue
            self.credentials = credentials
            self.problem = ""
            log.info("%s: new session", self.label)
            return credentials

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
