"""How the app's feed trusts a ``wss://`` API: a pinned certificate, or a CA it verifies against.

A pin is the lowercase hex SHA-256 of the server's DER certificate, as the backend's ready line
gives it (``tls_fingerprint``). With a pin the TLS handshake checks nothing (the certificate is
usually self-signed and names no host the app dials); :func:`check_pin` compares the certificate
the server presented with the pin once the connection is open, before the API key is sent. With a
CA file the certificate and host name are verified as usual; with neither, against the system's
CAs.
"""

from __future__ import annotations

import hashlib
import ssl

#: Hex characters of a fingerprint shown in an error: enough to tell two apart.
SHOWN = 8


class PinMismatch(Exception):
    """The server's certificate is not the pinned one."""


def fingerprint(der: bytes) -> str:
    """The fingerprint of a DER certificate: lowercase hex SHA-256."""
    return hashlib.sha256(der).hexdigest()


def client_context(pin: str = "", ca_file: str = "") -> ssl.SSLContext:
    """The TLS context of a connection to a ``wss://`` API trusted by ``pin`` or ``ca_file``."""
    if not pin:
        return ssl.create_default_context(cafile=ca_file or None)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def check_pin(ssl_object: ssl.SSLObject | None, pin: str) -> None:
    """Raise :class:`PinMismatch` unless the connection's certificate has the fingerprint
    ``pin``."""
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        raise PinMismatch("the server presented no certificate to check against the pin")
    presented = fingerprint(der)
    if presented != pin:
        raise PinMismatch(
            f"certificate fingerprint {presented[:SHOWN]}… does not match the pinned {pin[:SHOWN]}…"
        )
