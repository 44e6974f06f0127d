"""A backend the app attaches to instead of running one: where it serves and how to trust it.

An :class:`Attachment` names the client API (``ws://`` or ``wss://``), the bus
(``tcp://host:port``) and the API key, and how each is trusted: a ``wss://`` API by the pinned
fingerprint of its certificate or by a CA file (by the system's CAs with neither, see
:mod:`desktop.link.feed_client`); a CURVE bus by the server's public key (Z85) and the app's key
pair, the secret key file ``python -m backend --allow-bus-client NAME`` wrote. A key file is
referenced by its path and read when the bus is dialled.

:func:`make_attachment` checks values as typed (in the attach dialog, on the command line, in the
saved file); :class:`AttachmentError` names the field and says what is wrong, never showing the
API key. No Qt here.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import zmq.auth
from zmq.utils import z85

from backend.security.secret import Secret
from backend.security.tls import parse_fingerprint
from desktop.link.bus_monitor import CurveKeys

#: Each field of an :class:`Attachment`, as people read it.
LABELS = {
    "name": "Name",
    "api_url": "API URL",
    "bus": "Bus endpoint",
    "api_key": "API key",
    "fingerprint": "Certificate fingerprint",
    "ca_file": "CA file",
    "bus_server_key": "Bus server key",
    "bus_client_key_file": "Bus client key file",
}
CURVE_KEY_LENGTH = 40  # Z85 characters of a 32-byte CURVE key


class AttachmentError(ValueError):
    """A field of an attachment has a value the app cannot use."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{LABELS[field]}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Attachment:
    """A backend on another machine (or this one) that the app watches without running it."""

    name: str
    api_url: str
    bus: str
    api_key: Secret
    fingerprint: str = ""
    ca_file: str = ""
    bus_server_key: str = ""
    bus_client_key_file: str = ""

    def public_values(self) -> dict[str, str]:
        """Every field but the API key, by name."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del values["api_key"]
        return values

    def bus_keys(self) -> CurveKeys | None:
        """The bus's CURVE keys, the app's pair read from its key file; ``None`` for a bus
        without CURVE. ``OSError`` or ``ValueError`` if the file cannot be used any more."""
        if not self.bus_server_key:
            return None
        public, secret = zmq.auth.load_certificate(self.bus_client_key_file)
        if secret is None:
            raise ValueError(f"{self.bus_client_key_file} holds no secret key")
        return CurveKeys(self.bus_server_key.encode(), public, secret)


def make_attachment(values: Mapping[str, str]) -> Attachment:
    """The attachment ``values`` (texts by field name) describe; :class:`AttachmentError` for
    the first field that is missing or wrong."""
    text = {name: str(values.get(name) or "").strip() for name in LABELS}
    if not text["name"]:
        raise AttachmentError("name", "give the attachment a name")
    _check_url(text["api_url"])
    _check_bus(text["bus"])
    if not text["api_key"]:
        raise AttachmentError(
            "api_key", "needed: python -m backend --print-api-key prints it on the backend's host"
        )
    for name in ("ca_file", "bus_client_key_file"):
        text[name] = str(Path(text[name]).expanduser()) if text[name] else ""
    _check_trust(text)
    _check_curve(text)
    return Attachment(**{**text, "api_key": Secret(text["api_key"])})


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise AttachmentError("api_url", f"expected ws://HOST:PORT or wss://HOST:PORT, not {url!r}")
    _port("api_url", parts)


def _check_bus(endpoint: str) -> None:
    parts = urlsplit(endpoint)
    if parts.scheme != "tcp" or not parts.hostname or _port("bus", parts) is None:
        raise AttachmentError("bus", f"expected tcp://HOST:PORT, not {endpoint!r}")


def _port(field: str, parts) -> int | None:
    try:
        return parts.port
    except ValueError:
        raise AttachmentError(field, f"{parts.netloc!r} has no valid port") from None


def _check_trust(text: dict[str, str]) -> None:
    """Check how a ``wss://`` API is trusted; the fingerprint is written as pinned into ``text``."""
    pin, ca_file = text["fingerprint"], text["ca_file"]
    if (pin or ca_file) and not text["api_url"].startswith("wss://"):
        field = "fingerprint" if pin else "ca_file"
        raise AttachmentError(field, "trusts a wss:// API only; the API URL is ws://")
    if pin:
        try:
            text["fingerprint"] = parse_fingerprint(pin)
        except ValueError as exc:
            raise AttachmentError("fingerprint", f"{exc} (the backend's tls_fingerprint)") from None
    if pin and ca_file:
        raise AttachmentError("ca_file", "give a certificate fingerprint or a CA file, not both")
    if ca_file:
        _readable("ca_file", ca_file)
        try:
            ssl.create_default_context(cafile=ca_file)
        except ssl.SSLError:
            raise AttachmentError("ca_file", f"{ca_file} holds no PEM certificate") from None


def _check_curve(text: dict[str, str]) -> None:
    server_key, key_file = text["bus_server_key"], text["bus_client_key_file"]
    if key_file and not server_key:
        raise AttachmentError("bus_server_key", "needed with a bus client key file")
    if not server_key:
        return
    try:
        valid = len(server_key) == CURVE_KEY_LENGTH and len(z85.decode(server_key)) == 32
    except (KeyError, ValueError):
        valid = False
    if not valid:
        raise AttachmentError(
            "bus_server_key",
            f"expected the bus server's CURVE public key, {CURVE_KEY_LENGTH} Z85 characters"
            f" (the backend's bus_public_key), got {len(server_key)} characters",
        )
    if not key_file:
        raise AttachmentError(
            "bus_client_key_file",
            "needed with a bus server key: the secret key file of python -m backend"
            " --allow-bus-client NAME",
        )
    _readable("bus_client_key_file", key_file)
    try:
        _, secret = zmq.auth.load_certificate(key_file)
    except ValueError:
        secret = None
    if secret is None:
        raise AttachmentError(
            "bus_client_key_file",
            f"{key_file} holds no secret key: give the secret key file of --allow-bus-client",
        )


def _readable(field: str, path: str) -> None:
    try:
        with Path(path).open("rb"):
            pass
    except OSError as exc:
        raise AttachmentError(field, f"cannot read {path}: {exc.strerror or exc}") from None
