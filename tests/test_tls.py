"""The client API's TLS certificate: generated and kept, or the trader's files, checked; and the
clients' side: fingerprints, pinning, and a CA file."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from backend.runtime.settings import Settings, SettingsError
from backend.security.certificate import server_certificate, tls_dir
from backend.security.tls import (
    FingerprintMismatch,
    check_pinned,
    fingerprint,
    parse_fingerprint,
    pinned_client_context,
)

AUTO = Settings().replace(WEBSOCKET_TLS="auto", WEBSOCKET_HOST="192.0.2.7")


def write_pair(directory, name: str, password: bytes | None = None) -> tuple[str, str]:
    """A self-signed certificate and its key as PEM files ``name.crt`` and ``name.key``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    return str(cert_file), str(key_file)


def test_a_generated_certificate_names_this_machine_and_is_kept():
    first = server_certificate(AUTO)
    cert = x509.load_pem_x509_certificate(first.cert_file.read_bytes())
    assert first.fingerprint == fingerprint(cert.public_bytes(serialization.Encoding.DER))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    addresses = names.get_values_for_type(x509.IPAddress)
    for address in ("192.0.2.7", "127.0.0.1", "::1"):
        assert ipaddress.ip_address(address) in addresses
    assert cert.not_valid_after_utc - cert.not_valid_before_utc > datetime.timedelta(days=3600)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    if os.name == "posix":
        assert stat.S_IMODE(first.key_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(tls_dir().stat().st_mode) == 0o700
    assert server_certificate(AUTO) == first


def test_a_damaged_generated_certificate_says_how_to_make_a_new_one():
    server_certificate(AUTO).key_file.write_text("damaged\n")
    with pytest.raises(SettingsError, match=f"delete {tls_dir()} to generate a new certificate"):
        server_certificate(AUTO)


def test_tls_off_serves_no_certificate():
    assert server_certificate(Settings()) is None


@pytest.fixture
def pem_files(tmp_path) -> dict[str, str]:
    """PEM files by name: ``good`` and ``other`` pairs, a ``locked`` (encrypted) key, a path
    with no file, and nothing."""
    files = {"missing": str(tmp_path / "missing.pem"), "": ""}
    for name, password in (("good", None), ("other", None), ("locked", b"pass")):
        files[f"{name}.crt"], files[f"{name}.key"] = write_pair(tmp_path, name, password)
    return files


@pytest.mark.parametrize("mode", ["on", "auto"])
@pytest.mark.parametrize(
    ("files", "named", "reason"),
    [
        (("good.crt", ""), "WEBSOCKET_TLS_KEY", "a pem file is required"),
        (("", "good.key"), "WEBSOCKET_TLS_CERT", "a pem file is required"),
        (("missing", "good.key"), "WEBSOCKET_TLS_CERT", "cannot read the file: no such file"),
        (("good.crt", "missing"), "WEBSOCKET_TLS_KEY", "cannot read the file: no such file"),
        (("good.key", "good.key"), "WEBSOCKET_TLS_CERT", "expected a pem certificate file"),
        (("good.crt", "other.key"), "WEBSOCKET_TLS_KEY", "another certificate's key"),
        (("locked.crt", "locked.key"), "WEBSOCKET_TLS_KEY", "or an encrypted one"),
    ],
)
def test_files_it_cannot_serve_are_refused_naming_the_setting(
    pem_files, mode, files, named, reason
):
    cert, key = (pem_files[name] for name in files)
    settings = Settings().replace(
        WEBSOCKET_TLS=mode, WEBSOCKET_TLS_CERT=cert, WEBSOCKET_TLS_KEY=key
    )
    with pytest.raises(SettingsError) as caught:
        server_certificate(settings)
    assert caught.value.name == named
    assert reason in str(caught.value).lower()


@pytest.mark.parametrize("mode", ["on", "auto"])
def test_the_traders_own_files_are_served(pem_files, mode):
    settings = Settings().replace(
        WEBSOCKET_TLS=mode,
        WEBSOCKET_TLS_CERT=pem_files["good.crt"],
        WEBSOCKET_TLS_KEY=pem_files["good.key"],
    )
    certificate = server_certificate(settings)
    der = ssl.PEM_cert_to_DER_cert(Path(pem_files["good.crt"]).read_text())
    assert certificate.fingerprint == fingerprint(der)
    assert isinstance(certificate.context(), ssl.SSLContext)
    assert not tls_dir().exists()


def test_fingerprints_are_read_as_openssl_prints_them():
    digits = "0123456789abcdef" * 4
    spaced = ":".join(digits[i : i + 2] for i in range(0, 64, 2)).upper()
    assert parse_fingerprint(f" {spaced} ") == digits
    for bad in ("", digits[:-1], digits[:-1] + "g"):
        with pytest.raises(ValueError, match="not a SHA-256 fingerprint"):
            parse_fingerprint(bad)


async def test_a_client_trusts_the_server_by_fingerprint_or_by_the_certificate_as_ca(tmp_path):
    certificate = server_certificate(AUTO)

    async def greet(reader, writer):
        writer.write(b"hello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0, ssl=certificate.context())
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=pinned_client_context()
        )
        check_pinned(writer.get_extra_info("ssl_object"), certificate.fingerprint)
        with pytest.raises(FingerprintMismatch, match="not the pinned"):
            check_pinned(writer.get_extra_info("ssl_object"), "00" * 32)
        assert await reader.read() == b"hello"
        writer.close()
        for host in ("localhost", "127.0.0.1"):
            trusting = ssl.create_default_context(cafile=certificate.cert_file)
            reader, writer = await asyncio.open_connection(host, port, ssl=trusting)
            assert await reader.read() == b"hello", host
            writer.close()
    finally:
        server.close()
        await server.wait_closed()
