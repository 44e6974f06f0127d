"""FeedPool's client API: an OpenAlgo-compatible WebSocket server of the ticks the adapters publish.

The bus publisher hands each tick to the API in the process, with no socket in between
(:attr:`~backend.bus.publisher.ZmqPublisher.tick_listener`).

Modules, one concept each:

- :mod:`~backend.proxy.server`: :class:`WebSocketProxy`, listening and each connection's life;
- :mod:`~backend.proxy.actions`: what each client message does;
- :mod:`~backend.proxy.messages`: decoding and validating client messages;
- :mod:`~backend.proxy.replies`: the shapes of the replies;
- :mod:`~backend.proxy.errors`: the error codes;
- :mod:`~backend.proxy.client`: one client, its outbox and its writer;
- :mod:`~backend.proxy.outbox`: the bounded, conflating outbox;
- :mod:`~backend.proxy.throttle`: the optional per-client rate limit;
- :mod:`~backend.proxy.index`: which clients take each tick topic;
- :mod:`~backend.proxy.ticks`: the tick router, the publisher's tick listener, feeding the clients;
- :mod:`~backend.proxy.frames`: ``market_data`` frames built from the ticks' payloads.
"""

from backend.proxy.server import WebSocketProxy

__all__ = ["WebSocketProxy"]
