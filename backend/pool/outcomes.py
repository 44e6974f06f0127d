"""What the pool answers for each symbol of a request, and how it words what the broker refused.

Nothing is dropped without an outcome that says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.brokers.adapter import Refusal
from backend.instruments.master import Instrument


@dataclass(slots=True)
class Outcome:
    """What became of one symbol in a subscribe or unsubscribe request."""

    symbol: str
    exchange: str
    mode: int
    ok: bool
    code: str = ""
    message: str = ""
    connection: int | None = None  # the pooled connection holding the symbol
    account: str = ""  # its broker account's name, with several accounts


def refusals(result: list[Refusal] | BaseException, batch: list[Instrument]) -> list[Refusal]:
    """What a request's answer refused: all of ``batch`` if the request itself failed."""
    if isinstance(result, BaseException):
        return [Refusal(i, type(result).__name__, str(result)) for i in batch]
    return result


def refusal_text(refusal: Refusal) -> str:
    """The message of the outcome of a symbol the broker refused."""
    i = refusal.instrument
    if not refusal.code:
        return f"{i.symbol} on {i.exchange} not subscribed: {refusal.message}"
    return f"broker refused {i.symbol} on {i.exchange}: {refusal.code} {refusal.message}"
