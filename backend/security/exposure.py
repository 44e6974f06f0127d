"""Serving other machines: which bind hosts reach them, and the refusal to do it in the clear.

A socket bound to a loopback address (127.0.0.0/8, ``::1``, ``localhost``) is reachable from this
machine only. Any other host serves other machines too: a wildcard (``0.0.0.0``, ``::``, ZeroMQ's
``*``), an interface's address, a host name. Off loopback the client API must be served over TLS
(``WEBSOCKET_TLS``) and the bus secured with CURVE (``BUS_CURVE``), unless
``ALLOW_INSECURE_REMOTE`` says the trader means it.

The URLs the backend announces are dialled on this machine: a wildcard bind is announced at the
loopback address of its family (``0.0.0.0`` as ``127.0.0.1``, ``::`` as ``::1``); another machine
dials this machine's own address or name instead.
"""

from __future__ import annotations

import ipaddress

from backend.runtime.settings import CURVE_OFF, TLS_OFF, Settings

INSECURE_REMOTE = "INSECURE_REMOTE"
LOCALHOST = "localhost"
#: Wildcard bind hosts and the loopback address a client on this machine dials instead.
WILDCARDS = {"0.0.0.0": "127.0.0.1", "*": "127.0.0.1", "::": "::1"}


def is_loopback(host: str) -> bool:
    """Whether a socket bound to ``host`` is reachable from this machine only."""
    if host.lower() == LOCALHOST:
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


def local_url(scheme: str, host: str, port: int) -> str:
    """``scheme://host:port`` as a client on this machine dials a socket bound to ``host``."""
    dialled = WILDCARDS.get(host.strip("[]"), host.strip("[]"))
    return f"{scheme}://[{dialled}]:{port}" if ":" in dialled else f"{scheme}://{dialled}:{port}"


def insecure_exposures(settings: Settings) -> list[tuple[str, str]]:
    """Each part served off loopback in the clear, as ``(what happens, the remedy)``: the client
    API without TLS, the bus without CURVE."""
    found = []
    if settings.WEBSOCKET_TLS == TLS_OFF and not is_loopback(settings.WEBSOCKET_HOST):
        found.append(
            (
                f"WEBSOCKET_HOST={settings.WEBSOCKET_HOST} serves the client API to other "
                "machines without TLS",
                "set WEBSOCKET_TLS=auto (or on with WEBSOCKET_TLS_CERT and WEBSOCKET_TLS_KEY)",
            )
        )
    if settings.BUS_CURVE == CURVE_OFF and not is_loopback(settings.ZMQ_HOST):
        found.append(
            (
                f"ZMQ_HOST={settings.ZMQ_HOST} serves the bus to other machines unencrypted, "
                "to anyone",
                "set BUS_CURVE=on",
            )
        )
    return found
