"""A self-signed certificate for the client API, for ``WEBSOCKET_TLS=auto`` without files.

EC P-256, valid :data:`VALID_DAYS` days, for TLS servers, naming the bind host (unless a
wildcard), this machine's name, ``localhost``, ``127.0.0.1`` and ``::1``: clients pin its
fingerprint, or take it as their CA file and dial one of those names.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import socket
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from backend.security.exposure import LOCALHOST, WILDCARDS
from backend.security.private_files import write_private

log = logging.getLogger("feedpool.tls")

VALID_DAYS = 3650
COMMON_NAME = "FeedPool backend"


def generate(cert_file: Path, key_file: Path, host: str) -> None:
    """A new key in ``key_file`` (owner-only) and its certificate in ``cert_file``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, COMMON_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(_names(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(
        key_file,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    log.info("Generated a self-signed TLS certificate for the client API in %s", cert_file.parent)


def _names(host: str) -> list[x509.GeneralName]:
    """The bind host (unless a wildcard), this machine's name, localhost and its addresses."""
    names: list[x509.GeneralName] = []
    for candidate in (host.strip("[]"), socket.gethostname(), LOCALHOST, "127.0.0.1", "::1"):
        if candidate in WILDCARDS or not candidate:
            continue
        try:
            name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(candidate))
        except ValueError:
            name = x509.DNSName(candidate.lower())
        if name not in names:
            names.append(name)
    return names
