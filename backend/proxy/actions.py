"""The client API's actions: each client message in, exactly one reply out.

:meth:`Actions.handle` decodes a message, checks it is allowed (only ``authenticate`` before
authentication), validates it and carries it out. Whatever goes wrong is answered with the error
envelope and the socket stays open; an unexpected failure is logged and answered with
``SERVER_ERROR``.

Subscriptions go through the pool with the session as the holder, so the pool's reference
counting is per client; the :class:`~backend.proxy.index.SubscriptionIndex` mirrors what the pool
granted, and so does the session's own set, which says what to let go when it leaves.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable

from backend.brokers import BROKERS
from backend.feed import (
    AUTHENTICATION_ERROR,
    CONNECTED,
    INVALID_ACTION,
    NOT_AUTHENTICATED,
    SERVER_ERROR,
)
from backend.pool import ConnectionPool, Outcome
from backend.proxy import replies
from backend.proxy.errors import RequestError
from backend.proxy.index import SubscriptionIndex
from backend.proxy.messages import (
    Message,
    action_of,
    decode,
    parse_subscribe,
    parse_unsubscribe,
    request_id,
)
from backend.proxy.session import ClientSession
from backend.secret import Secret
from backend.settings import SIMULATOR

log = logging.getLogger("feedpool.proxy")

Handler = Callable[[ClientSession, Message], Awaitable[replies.Reply]]


class Actions:
    """Carries out client messages against ``pool``, keeping ``subscription_index`` in step."""

    def __init__(
        self, pool: ConnectionPool, subscription_index: SubscriptionIndex, api_key: Secret
    ) -> None:
        self.pool = pool
        self.subscription_index = subscription_index
        self._api_key = api_key.reveal().encode()
        self._handlers: dict[str, Handler] = {
            "authenticate": self.authenticate,
            "subscribe": self.subscribe,
            "unsubscribe": self.unsubscribe,
            "unsubscribe_all": self.unsubscribe_all,
            "ping": self.ping,
            "get_broker_info": self.broker_info,
            "get_supported_brokers": self.supported_brokers,
        }

    @property
    def broker(self) -> str:
        return self.pool.broker

    async def handle(self, session: ClientSession, frame: str | bytes) -> None:
        """Carry out one message from ``session`` and send it the reply."""
        message: Message = {}
        try:
            message = decode(frame)
            action = action_of(message)
            if not session.authenticated and action != "authenticate":
                raise RequestError(NOT_AUTHENTICATED, "Authenticate first")
            handler = self._handlers.get(action)
            if handler is None:
                raise RequestError(INVALID_ACTION, f"Unknown action {action[:40]!r}")
            reply = await handler(session, message)
        except RequestError as exc:
            reply = replies.error(exc.code, exc.message, request_id(message))
        except Exception:
            log.exception("Client %d (%s): request failed", session.number, session.peer)
            reply = replies.error(SERVER_ERROR, "Internal server error", request_id(message))
        await session.reply(reply)

    async def authenticate(self, session: ClientSession, message: Message) -> replies.Reply:
        key = message.get("api_key", message.get("apikey"))
        if not isinstance(key, str) or not hmac.compare_digest(key.encode(), self._api_key):
            session.failed_authentications += 1
            if session.failed_authentications == 1:  # a client retrying in a loop logs once
                log.warning("Client %d (%s): authentication failed", session.number, session.peer)
            raise RequestError(AUTHENTICATION_ERROR, "Invalid API key")
        if not session.authenticated:
            session.authenticated = True
            log.info("Client %d (%s) authenticated", session.number, session.peer)
        return replies.authenticated(self.broker, self.pool.user_id)

    async def subscribe(self, session: ClientSession, message: Message) -> replies.Reply:
        request = parse_subscribe(message)
        # Routed before the pool subscribes, so the snapshot tick that follows a subscription
        # reaches the client; what the pool refuses is unrouted after.
        added = [
            (symbol, exchange, request.mode)
            for symbol, exchange in request.symbols
            if (symbol, exchange, request.mode) not in session.subscriptions
        ]
        for key in added:
            self.subscription_index.add(session, *key)
        outcomes = await self.pool.subscribe_many(request.symbols, request.mode, session)
        for outcome in outcomes:
            key = (outcome.symbol, outcome.exchange, outcome.mode)
            if outcome.ok:
                session.subscriptions.add(key)
            elif key in added:
                self.subscription_index.discard(session, *key)
        return replies.subscribed(outcomes, self.broker, request.depth, request_id(message))

    async def unsubscribe(self, session: ClientSession, message: Message) -> replies.Reply:
        request = parse_unsubscribe(message)
        outcomes = await self.release(session, request.subscriptions)
        return replies.unsubscribed(outcomes, self.broker, request_id(message))

    async def unsubscribe_all(self, session: ClientSession, message: Message) -> replies.Reply:
        outcomes = await self.release(session, sorted(session.subscriptions))
        return replies.unsubscribed(outcomes, self.broker, request_id(message))

    async def release(
        self, session: ClientSession, subscriptions: list[tuple[str, str, int]]
    ) -> list[Outcome]:
        """Let go of ``subscriptions`` for ``session``: its ticks stop, then the pool is told."""
        for key in subscriptions:
            if key in session.subscriptions:
                session.subscriptions.discard(key)
                self.subscription_index.discard(session, *key)
        if not subscriptions:
            return []
        return await self.pool.unsubscribe_many(subscriptions, session)

    async def ping(self, session: ClientSession, message: Message) -> replies.Reply:
        return replies.pong(message.get("timestamp"))

    async def broker_info(self, session: ClientSession, message: Message) -> replies.Reply:
        return replies.broker_info(self.broker, self.adapter_status(), self.pool.user_id)

    async def supported_brokers(self, session: ClientSession, message: Message) -> replies.Reply:
        return replies.supported_brokers((SIMULATOR, *BROKERS))

    def adapter_status(self) -> str:
        """``connected`` when every pooled connection is, ``idle`` before the first opens, else
        the state of the first connection that is not connected."""
        states = [adapter.state for adapter in self.pool.adapters]
        if not states:
            return "idle"
        return next((state for state in states if state != CONNECTED), CONNECTED)
