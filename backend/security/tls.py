"""TLS for the client API's clients: a certificate's fingerprint, and trusting a server by it.

A backend with ``WEBSOCKET_TLS=auto`` and no certificate of the trader's serves a self-signed one,
which no certificate authority vouches for. A client trusts it by its fingerprint instead: the
SHA-256 of the certificate's DER bytes as 64 lowercase hex digits, which the backend announces on
its ready line (``tls_fingerprint``) and logs at start. The client connects with
:func:`pinned_client_context`, which checks neither a CA nor the host name, and then, before it
sends anything (its API key above all), checks the certificate the server presented with
:func:`check_pinned`::

    async with connect("wss://feedpool-host:8765", ssl=pinned_client_context()) as ws:
        check_pinned(ws.transport.get_extra_info("ssl_object"), fingerprint)
        await ws.send(...)

A certificate from a CA needs none of this: ``ssl.create_default_context(cafile=...)`` verifies
it as usual, and so does the generated certificate used as its own CA file (it names the bind
host, ``localhost``, ``127.0.0.1`` and ``::1``).
"""

from __future__ import annotations

import hashlib
import ssl

FINGERPRINT_DIGITS = 64
_HEX_DIGITS = frozenset("0123456789abcdef")


class FingerprintMismatch(ssl.SSLError):
    """The server presented a certificate other than the pinned one."""

    def __str__(self) -> str:
        return str(self.args[0])  # ssl.SSLError shows a lone argument as a tuple


def fingerprint(der: bytes) -> str:
    """The SHA-256 fingerprint of a DER certificate: 64 lowercase hex digits, no colons."""
    return hashlib.sha256(der).hexdigest()


def parse_fingerprint(text: str) -> str:
    """``text`` as :func:`fingerprint` writes it; colons and capitals (as ``openssl x509
    -fingerprint -sha256`` prints it) are allowed. :class:`ValueError` if it is none."""
    digits = text.strip().replace(":", "").lower()
    if len(digits) != FINGERPRINT_DIGITS or not _HEX_DIGITS.issuperset(digits):
        raise ValueError(
            f"{text!r} is not a SHA-256 fingerprint: expected {FINGERPRINT_DIGITS} hex digits"
        )
    return digits


def pinned_client_context() -> ssl.SSLContext:
    """A client context that takes any certificate: check it with :func:`check_pinned`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def check_pinned(ssl_object: ssl.SSLObject | ssl.SSLSocket, pinned: str) -> None:
    """:class:`FingerprintMismatch` unless the server's certificate has fingerprint ``pinned``."""
    expected = parse_fingerprint(pinned)
    der = ssl_object.getpeercert(binary_form=True)
    presented = fingerprint(der) if der else None
    if presented != expected:
        raise FingerprintMismatch(
            f"the server's TLS certificate has SHA-256 fingerprint {presented or '(none)'}, "
            f"not the pinned {expected}: it is not the backend you trust, or its certificate "
            "has changed"
        )
