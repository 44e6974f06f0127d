"""The proxy's replies, shaped as ``docs/client-api.md`` documents them.

Each function returns the reply as a dict; :func:`encode` turns one into the UTF-8 JSON of a text
frame. A ``request_id`` the client gave is echoed; none is added when it gave none.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from backend.feed import DEPTH_LEVELS
from backend.pool.connection_pool import Outcome

Reply = dict[str, Any]

SUPPORTED_FEATURES = {"ltp": True, "quote": True, "depth": True}


def encode(reply: Reply) -> bytes:
    return json.dumps(reply, separators=(",", ":")).encode()


def with_request_id(reply: Reply, request_id: Any) -> Reply:
    """``reply`` with the client's ``request_id``, when its message had one."""
    if request_id is not None:
        reply["request_id"] = request_id
    return reply


def _status(succeeded: int, failed: int) -> str:
    if not failed:
        return "success"
    return "partial" if succeeded else "error"


def error(code: str, message: str, request_id: Any = None) -> Reply:
    return with_request_id(
        {"type": "error", "status": "error", "code": code, "message": message}, request_id
    )


def authenticated(broker: str, user_id: str) -> Reply:
    return {
        "type": "auth",
        "status": "success",
        "message": "Authentication successful",
        "broker": broker,
        "user_id": user_id,
        "supported_features": dict(SUPPORTED_FEATURES),
    }


def subscribed(outcomes: Iterable[Outcome], broker: str, depth: int = DEPTH_LEVELS) -> Reply:
    """The reply to a subscribe request; success entries name the pooled connection (and, with
    several broker accounts, the account)."""
    entries = []
    for o in outcomes:
        if o.ok:
            entry = {
                "symbol": o.symbol,
                "exchange": o.exchange,
                "status": "success",
                "mode": o.mode,
                "depth": depth,
                "broker": broker,
                "connection": o.connection,
            }
            if o.account:
                entry["account"] = o.account
            entries.append(entry)
        else:
            entries.append(
                {
                    "symbol": o.symbol,
                    "exchange": o.exchange,
                    "status": "error",
                    "code": o.code,
                    "message": o.message,
                    "broker": broker,
                }
            )
    succeeded = sum(entry["status"] == "success" for entry in entries)
    return {
        "type": "subscribe",
        "status": _status(succeeded, len(entries) - succeeded),
        "subscriptions": entries,
        "message": "Subscription processing complete",
        "broker": broker,
    }


def unsubscribed(outcomes: Iterable[Outcome], broker: str) -> Reply:
    """The reply to unsubscribe and unsubscribe_all."""
    successful, failed = [], []
    for o in outcomes:
        entry = {"symbol": o.symbol, "exchange": o.exchange, "mode": o.mode}
        if o.ok:
            successful.append({**entry, "status": "success", "broker": broker})
        else:
            failed.append(
                {**entry, "status": "error", "code": o.code, "message": o.message, "broker": broker}
            )
    return {
        "type": "unsubscribe",
        "status": _status(len(successful), len(failed)),
        "message": "Unsubscription processing complete",
        "successful": successful,
        "failed": failed,
        "broker": broker,
    }


def pong(client_timestamp: Any) -> Reply:
    return {
        "type": "pong",
        "status": "success",
        "server_timestamp": int(time.time() * 1000),
        "client_timestamp": client_timestamp,
    }


def broker_info(
    broker: str, adapter_status: str, user_id: str, accounts: list[dict[str, Any]]
) -> Reply:
    """OpenAlgo's fields (those of the first account), and every account with its state."""
    return {
        "type": "broker_info",
        "status": "success",
        "broker": broker,
        "adapter_status": adapter_status,
        "user_id": user_id,
        "accounts": accounts,
    }


def supported_brokers(brokers: Iterable[str]) -> Reply:
    names = list(brokers)
    return {"type": "supported_brokers", "status": "success", "brokers": names, "count": len(names)}
