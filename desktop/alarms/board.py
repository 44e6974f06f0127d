"""What is wrong now, from the backend's state, the pool's statistics and health changes (no
widgets).

An :class:`AlarmBoard` holds at most one alarm for the backend, one for the broker's session and
one per connection that is down or reconnecting. While the backend is not serving, only its alarm
is listed: its pool and connections are gone with it, and the next statistics say what came back.

With several broker accounts, the session's alarm is each account's whose session ended, saying
how many of its symbols tick through other accounts meanwhile and how many wait; a connection is
an alarm only while symbols wait on it (those moved to another account tick on).
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.bus.messages import AccountStats, PoolStats
from backend.feed import DOWN, RECONNECTING, SESSION_EXPIRED
from desktop.colours import state_colour
from desktop.link.backend_link import CONNECTING
from desktop.link.feed_client import CONNECTED
from desktop.link.process import READY, STARTING

#: The backend's states in which it serves: a run that is ready, an attached one connected.
SERVING_STATES = frozenset({READY, CONNECTED})
#: The state the window starts in, before the link starts a backend or dials one.
NOT_STARTED = "not started"
#: The backend's states on the way to serving, which are no fault.
ON_THE_WAY = frozenset({NOT_STARTED, STARTING, CONNECTING})
#: The connection states that stop its symbols' ticks until it is back.
LOST_STATES = frozenset({RECONNECTING, DOWN})

BACKEND, SESSION = "backend", "session"


def backend_serving(state: str) -> bool:
    """Whether the backend in ``state`` serves the app."""
    return state in SERVING_STATES


@dataclass(frozen=True, slots=True)
class Alarm:
    """One thing that is wrong: ``kind`` is :data:`BACKEND`, :data:`SESSION` or a connection's
    ``connection N``; ``text`` says it for people, ``colour`` how serious it is."""

    kind: str
    text: str
    colour: str
    #: The account a session alarm is about, with several accounts.
    account: str = ""


def _backend_alarm(state: str, detail: str) -> Alarm:
    said = f"Backend {state}" + (f": {detail}" if detail else "")
    if state in ON_THE_WAY:
        return Alarm(BACKEND, f"{said}. Prices update once it serves.", state_colour(STARTING))
    return Alarm(BACKEND, f"{said}. No prices until it is back.", state_colour(state))


class AlarmBoard:
    """The alarms raised now, worst first."""

    def __init__(self) -> None:
        self._backend: Alarm | None = None
        #: Each connection's state and its reason, from the statistics and health changes.
        self._states: dict[int, tuple[str, str]] = {}
        #: Symbols each connection held at the last statistics.
        self._held: dict[int, int] = {}
        #: Why the broker refused the account's session before any connection opened.
        self._session_problem = ""
        #: The accounts, with several; empty with one.
        self._accounts: list[AccountStats] = []

    def set_backend_state(self, state: str, detail: str = "") -> None:
        """The backend's state (e.g. ``ready``, ``restarting``) and why."""
        if backend_serving(state):
            self._backend = None
            return
        self._backend = _backend_alarm(state, detail)
        self._states.clear()
        self._session_problem = ""

    def update_pool(self, pool: PoolStats) -> None:
        """A ``SYS.POOL`` message: every connection's state, and the session's."""
        self._states = {c.index: (c.state, c.reason) for c in pool.connections}
        self._held = {c.index: c.symbols for c in pool.connections}
        self._session_problem = pool.session_problem
        self._accounts = pool.accounts if len(pool.accounts) > 1 else []

    def set_connection_state(self, index: int, state: str, reason: str = "") -> None:
        """A connection's new state, from ``SYS.HEALTH``."""
        self._states[index] = (state, reason)

    def alarms(self) -> list[Alarm]:
        """The backend's alarm, else the session's and the lost connections' in index order."""
        if self._backend is not None:
            return [self._backend]
        expired = [reason for state, reason in self._states.values() if state == SESSION_EXPIRED]
        alarms = []
        if self._accounts:
            alarms += [_account_alarm(a) for a in self._accounts if a.session_problem]
        elif self._session_problem or expired:
            reason = self._session_problem or expired[0]
            because = f" ({reason})" if reason else ""
            alarms.append(
                Alarm(
                    SESSION,
                    f"The broker ended the session{because}: log in again. No prices until then.",
                    state_colour(SESSION_EXPIRED),
                )
            )
        for index in sorted(self._states):
            state, reason = self._states[index]
            waiting = self._held.get(index) or not self._accounts
            if state in LOST_STATES and waiting:
                alarms.append(self._connection_alarm(index, state, reason))
        return alarms

    def _connection_alarm(self, index: int, state: str, reason: str) -> Alarm:
        held = self._held.get(index)
        symbols = f"its {held:,} symbols" if held else "its symbols"
        because = f" ({reason})" if reason else ""
        return Alarm(
            f"connection {index}",
            f"Connection {index} {state}{because}: {symbols} do not tick until it is back.",
            state_colour(state),
        )


def _account_alarm(account: AccountStats) -> Alarm:
    """The alarm of an account whose session the broker ended."""
    if not account.symbols:
        meanwhile = "Its symbols tick through the other accounts meanwhile."
    else:
        moved = f"{account.lent:,} of its symbols tick" if account.lent else "None tick"
        meanwhile = (
            f"{moved} through the other accounts meanwhile; {account.symbols:,} wait for it."
        )
    return Alarm(
        SESSION,
        f"The broker ended account {account.name}'s session ({account.session_problem}): log in "
        f"again. {meanwhile}",
        state_colour(SESSION_EXPIRED),
        account.name,
    )
