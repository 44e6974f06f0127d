"""The client API's TLS certificate: the trader's own PEM files, or a self-signed one made here.

- ``WEBSOCKET_TLS=on`` serves ``WEBSOCKET_TLS_CERT`` (the certificate, or a chain with the
  server's certificate first) and ``WEBSOCKET_TLS_KEY`` (its unencrypted private key).
- ``WEBSOCKET_TLS=auto`` serves those files when they are set. Otherwise, on its first start, the
  backend generates a self-signed certificate (:mod:`backend.security.self_signed`) in
  ``config_dir()/tls/``: ``cert.pem``, and ``key.pem`` readable by its owner only, in a folder
  only its owner may enter. Later starts serve the same files, so clients that pinned its
  fingerprint keep trusting it. Deleting the folder makes a new one at the next start.

Every problem is a :class:`~backend.runtime.settings.SettingsError` naming the setting: a file
missing or unreadable, no certificate in it, a key that is not the certificate's. A certificate to
generate that cannot be written is a :class:`~backend.security.private_files.PrivateFileError`.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from pathlib import Path

from backend.runtime.settings import TLS_AUTO, TLS_OFF, Settings, SettingsError, config_dir
from backend.security.private_files import keeping, private_dir, tighten
from backend.security.tls import fingerprint

TLS_DIR_NAME = "tls"
CERT_FILE_NAME = "cert.pem"
KEY_FILE_NAME = "key.pem"
_PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


@dataclass(frozen=True)
class ServerCertificate:
    """A certificate and its key, checked to belong together."""

    cert_file: Path
    key_file: Path
    #: :func:`backend.security.tls.fingerprint` of the certificate.
    fingerprint: str

    def context(self) -> ssl.SSLContext:
        """A server context serving this certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file, password=_no_password)
        return context


def tls_dir() -> Path:
    """Where the generated certificate is kept."""
    return config_dir() / TLS_DIR_NAME


class _Unusable(Exception):
    """``path`` cannot be served, for ``reason``."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def server_certificate(settings: Settings) -> ServerCertificate | None:
    """The certificate ``settings`` ask for, generated if need be; None when TLS is off."""
    mode = settings.WEBSOCKET_TLS
    if mode == TLS_OFF:
        return None
    cert, key = settings.WEBSOCKET_TLS_CERT, settings.WEBSOCKET_TLS_KEY
    if mode == TLS_AUTO and not cert and not key:
        return _generated(settings.WEBSOCKET_HOST)
    for name, value in (("WEBSOCKET_TLS_CERT", cert), ("WEBSOCKET_TLS_KEY", key)):
        if not value:
            needed = "once the other file is set" if mode == TLS_AUTO else ""
            raise SettingsError(
                name, value, f"a PEM file is required with WEBSOCKET_TLS={mode} {needed}".strip()
            )
    cert_file, key_file = Path(cert).expanduser(), Path(key).expanduser()
    try:
        return _load(cert_file, key_file)
    except _Unusable as exc:
        name = "WEBSOCKET_TLS_CERT" if exc.path == cert_file else "WEBSOCKET_TLS_KEY"
        raise SettingsError(name, str(exc.path), exc.reason) from None


def _load(cert_file: Path, key_file: Path) -> ServerCertificate:
    """The certificate in ``cert_file`` with the key in ``key_file``, or :class:`_Unusable`."""
    der = _first_certificate(cert_file)
    _read(key_file)
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            cert_file, key_file, password=_no_password
        )
    except ssl.SSLError as exc:
        why = (
            "it is another certificate's key"
            if exc.reason == "KEY_VALUES_MISMATCH"
            else "it is no PEM key, or an encrypted one"
        )
        raise _Unusable(
            key_file, f"expected the unencrypted PEM private key of {cert_file}: {why}"
        ) from None
    return ServerCertificate(cert_file, key_file, fingerprint(der))


def _first_certificate(path: Path) -> bytes:
    """The DER bytes of the first certificate in the PEM file ``path``: the server's."""
    found = _PEM_CERTIFICATE.search(_read(path).decode("ascii", "replace"))
    if found is not None:
        try:
            der = ssl.PEM_cert_to_DER_cert(found.group())
            ssl.create_default_context().load_verify_locations(cadata=der)  # parses it
        except (ValueError, ssl.SSLError):
            pass
        else:
            return der
    raise _Unusable(path, "expected a PEM certificate file")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _Unusable(path, f"cannot read the file: {exc.strerror or exc}") from None


def _no_password() -> bytes:
    """An encrypted key's password: there is none, so such a key is refused, never prompted for."""
    return b""


def _generated(host: str) -> ServerCertificate:
    """The self-signed certificate in :func:`tls_dir`, made first if there is none;
    :class:`~backend.security.private_files.PrivateFileError` if it cannot be kept there."""
    directory = tls_dir()
    cert_file, key_file = directory / CERT_FILE_NAME, directory / KEY_FILE_NAME
    remedy = (
        f"make {directory.parent} a folder you can write to, "
        "or set WEBSOCKET_TLS_CERT and WEBSOCKET_TLS_KEY"
    )
    with keeping("the generated TLS certificate", directory, remedy):
        private_dir(directory)
        if not (cert_file.is_file() and key_file.is_file()):
            # Only a backend that generates a certificate loads the cryptography package.
            from backend.security.self_signed import generate

            generate(cert_file, key_file, host)
        tighten(key_file)
    try:
        return _load(cert_file, key_file)
    except _Unusable as exc:
        raise SettingsError(
            "WEBSOCKET_TLS",
            TLS_AUTO,
            f"cannot use the generated {exc.path} ({exc.reason}); "
            f"delete {directory} to generate a new certificate",
        ) from None
