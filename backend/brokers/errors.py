"""What a broker connection raises when the broker refuses or fails it.

Each error carries the client API's error code it is reported with (:mod:`backend.feed`).
"""

from __future__ import annotations

from backend.feed import BROKER_CONNECTION_ERROR, BROKER_ERROR


class BrokerError(Exception):
    """The broker refused or failed a request. ``code`` is the client API's error code."""

    code = BROKER_ERROR


class BrokerConnectionError(BrokerError):
    """The broker could not be reached, or refused the connection."""

    code = BROKER_CONNECTION_ERROR


class ConnectionLimitError(BrokerConnectionError):
    """The broker refused a connection because the account has as many as it allows."""


class SessionExpiredError(BrokerConnectionError):
    """The broker refused a connection because the account's session has ended."""
