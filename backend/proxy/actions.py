"""The client API's actions: each client message in, exactly one reply out.

:meth:`Actions.handle` decodes a message, checks it is allowed (only ``authenticate`` before
authentication), validates it and carries it out. Whatever goes wrong is answered with the error
envelope and the socket stays open, whatever the message held: a message that cannot be decoded
(``INVALID_JSON``), a wrong API key and an unexpected failure (``SERVER_ERROR``, also when the
reply cannot be encoded) are each counted and reported to a
:class:`~backend.logs.faults.FaultLog`, which logs a line an interval without a traceback, so no
client can fill the log. Authentications from an address that gave too many wrong keys wait
first (:class:`~backend.proxy.limits.AuthBackoff`).

Subscriptions go through the pool with the client as the holder, so the pool's reference
counting is per client; the :class:`~backend.proxy.index.SubscriptionIndex` mirrors what the pool
granted, and so does the client's own set, which says what to let go when it leaves.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

from backend.brokers import BROKERS
from backend.brokers.session import LoginError
from backend.feed import (
    AUTHENTICATION_ERROR,
    CONNECTED,
    INVALID_ACTION,
    INVALID_JSON,
    INVALID_PARAMETERS,
    NOT_AUTHENTICATED,
    SERVER_ERROR,
)
from backend.logs.faults import FaultLog
from backend.pool.accounts import PooledAccounts
from backend.pool.outcomes import Outcome
from backend.proxy import replies
from backend.proxy.client import Client
from backend.proxy.errors import RequestError
from backend.proxy.index import SubscriptionIndex
from backend.proxy.limits import AuthBackoff
from backend.proxy.messages import (
    Message,
    action_of,
    decode,
    parse_set_session,
    parse_subscribe,
    parse_unsubscribe,
    request_id,
)
from backend.runtime.settings import SIMULATOR
from backend.security.secret import Secret

log = logging.getLogger("feedpool.proxy")

Handler = Callable[[Client, Message], Awaitable[replies.Reply]]


class Actions:
    """Carries out client messages against ``pool``, keeping ``subscription_index`` in step;
    faults go to ``faults``."""

    def __init__(
        self,
        pool: PooledAccounts,
        subscription_index: SubscriptionIndex,
        api_key: Secret,
        backoff: AuthBackoff,
        faults: FaultLog,
    ) -> None:
        self.pool = pool
        self.subscription_index = subscription_index
        self.backoff = backoff
        self.faults = faults
        #: Messages that could not be decoded, and requests that failed unexpectedly.
        self.malformed = 0
        self.server_errors = 0
        self._api_key = api_key.reveal().encode()
        self._handlers: dict[str, Handler] = {
            "authenticate": self.authenticate,
            "subscribe": self.subscribe,
            "unsubscribe": self.unsubscribe,
            "unsubscribe_all": self.unsubscribe_all,
            "ping": self.ping,
            "get_broker_info": self.broker_info,
            "get_supported_brokers": self.supported_brokers,
            "set_session": self.set_session,
        }

    @property
    def broker(self) -> str:
        return self.pool.broker

    async def handle(self, client: Client, frame: str | bytes) -> None:
        """Carry out one message from ``client`` and send it the reply."""
        echoed = None
        try:
            message = decode(frame)
            echoed = request_id(message)
            action = action_of(message)
            if not client.authenticated and action != "authenticate":
                raise RequestError(NOT_AUTHENTICATED, "Authenticate first")
            handler = self._handlers.get(action)
            if handler is None:
                raise RequestError(INVALID_ACTION, f"Unknown action {action[:40]!r}")
            reply = replies.encode(replies.with_request_id(await handler(client, message), echoed))
        except RequestError as exc:
            if exc.code == INVALID_JSON:
                self.malformed += 1
                self.faults.report(
                    "malformed message", "client %d (%s): %s", *_who(client), exc.message
                )
            reply = replies.encode(replies.error(exc.code, exc.message, echoed))
        except Exception as exc:
            self.server_errors += 1
            self.faults.report(
                "request failed", "client %d (%s): %s", *_who(client), _described(exc)
            )
            reply = replies.encode(replies.error(SERVER_ERROR, "Internal server error", echoed))
        await client.reply(reply)

    async def authenticate(self, client: Client, message: Message) -> replies.Reply:
        waited = await self.backoff.wait(client.address)
        if waited:
            self.faults.report(
                "slowed an authentication",
                "client %d (%s) waited %g s: too many wrong keys from its address",
                *_who(client),
                waited,
            )
        key = message.get("api_key", message.get("apikey"))
        if not isinstance(key, str) or not hmac.compare_digest(key.encode(), self._api_key):
            self.backoff.failed(client.address)
            self.faults.report("authentication failed", "client %d (%s)", *_who(client))
            delay = self.backoff.delay(client.address)
            slowed = (
                f"; too many failed authentications from this address: each now waits {delay:g} s"
                if delay
                else ""
            )
            raise RequestError(AUTHENTICATION_ERROR, f"Invalid API key{slowed}")
        self.backoff.succeeded(client.address)
        if not client.authenticated:
            client.authenticated = True
            log.info("Client %d (%s) authenticated", client.number, client.peer)
        return replies.authenticated(self.broker, self.pool.user_id)

    async def subscribe(self, client: Client, message: Message) -> replies.Reply:
        request = parse_subscribe(message)
        # Routed before the pool subscribes, so the snapshot tick that follows a subscription
        # reaches the client; what the pool refuses is unrouted after.
        added = [
            (symbol, exchange, request.mode)
            for symbol, exchange in request.symbols
            if (symbol, exchange, request.mode) not in client.subscriptions
        ]
        for key in added:
            self.subscription_index.add(client, *key)
        outcomes = await self.pool.subscribe_many(request.symbols, request.mode, client)
        for outcome in outcomes:
            key = (outcome.symbol, outcome.exchange, outcome.mode)
            if outcome.ok:
                client.subscriptions.add(key)
            elif key in added:
                self.subscription_index.discard(client, *key)
        return replies.subscribed(outcomes, self.broker, request.depth)

    async def unsubscribe(self, client: Client, message: Message) -> replies.Reply:
        request = parse_unsubscribe(message)
        outcomes = await self.release(client, request.subscriptions)
        return replies.unsubscribed(outcomes, self.broker)

    async def unsubscribe_all(self, client: Client, message: Message) -> replies.Reply:
        outcomes = await self.release(client, sorted(client.subscriptions))
        return replies.unsubscribed(outcomes, self.broker)

    async def release(
        self, client: Client, subscriptions: list[tuple[str, str, int]]
    ) -> list[Outcome]:
        """Let go of ``subscriptions`` for ``client``: its ticks stop, then the pool is told."""
        for key in subscriptions:
            if key in client.subscriptions:
                client.subscriptions.discard(key)
                self.subscription_index.discard(client, *key)
        if not subscriptions:
            return []
        return await self.pool.unsubscribe_many(subscriptions, client)

    async def ping(self, client: Client, message: Message) -> replies.Reply:
        return replies.pong(message.get("timestamp"))

    async def broker_info(self, client: Client, message: Message) -> replies.Reply:
        return replies.broker_info(
            self.broker, self.adapter_status(), self.pool.user_id, self.pool.account_states()
        )

    async def set_session(self, client: Client, message: Message) -> replies.Reply:
        """FeedPool's own action: the day's new session of an account (after the trader's
        browser login), taken without a restart."""
        name, given = parse_set_session(message)
        try:
            account = await self.pool.set_session(name, given)
        except (ValueError, LoginError) as exc:
            raise RequestError(INVALID_PARAMETERS, str(exc)) from None
        log.info("Client %d gave account %s a new session", client.number, account.name)
        return {"type": "set_session", "status": "success", "account": account.name}

    async def supported_brokers(self, client: Client, message: Message) -> replies.Reply:
        return replies.supported_brokers((SIMULATOR, *BROKERS))

    def adapter_status(self) -> str:
        """``connected`` when every pooled connection is, ``idle`` before the first opens, else
        the state of the first connection that is not connected."""
        states = [adapter.state for adapter in self.pool.adapters]
        if not states:
            return "idle"
        return next((state for state in states if state != CONNECTED), CONNECTED)


def _who(client: Client) -> tuple[int, str]:
    """The client's number and address, as log lines name it."""
    return client.number, client.peer


def _described(exc: Exception) -> str:
    """``exc``'s type, message and where it was raised: a log line's worth, not a traceback."""
    where: TracebackType | None = exc.__traceback__
    while where is not None and where.tb_next is not None:
        where = where.tb_next
    text = f"{type(exc).__name__}: {str(exc)[:200]}"
    if where is None:
        return text
    module = where.tb_frame.f_globals.get("__name__", "?")
    return f"{text} at {module}:{where.tb_lineno} in {where.tb_frame.f_code.co_name}"
