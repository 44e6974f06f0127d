"""The exception that answers a client's request with one of the API's error codes."""

from __future__ import annotations


class RequestError(Exception):
    """A request the proxy refuses: answered with the error envelope, the socket stays open."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
