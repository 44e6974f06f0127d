"""The client API's error codes, and the exception that answers a request with one."""

from __future__ import annotations

INVALID_JSON = "INVALID_JSON"
INVALID_ACTION = "INVALID_ACTION"
AUTHENTICATION_ERROR = "AUTHENTICATION_ERROR"
NOT_AUTHENTICATED = "NOT_AUTHENTICATED"
INVALID_MODE = "INVALID_MODE"
INVALID_PARAMETERS = "INVALID_PARAMETERS"
BROKER_ERROR = "BROKER_ERROR"
BROKER_CONNECTION_ERROR = "BROKER_CONNECTION_ERROR"
MAX_CAPACITY_REACHED = "MAX_CAPACITY_REACHED"
NOT_SUBSCRIBED = "NOT_SUBSCRIBED"
SERVER_ERROR = "SERVER_ERROR"


class RequestError(Exception):
    """A request the proxy refuses: answered with the error envelope, the socket stays open."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
