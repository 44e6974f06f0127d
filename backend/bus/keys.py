"""The bus's CURVE keys, as pyzmq's certificate files, in ``config_dir()/bus/``.

- ``server.key`` and ``server.key_secret``: the backend's key pair, made on its first start with
  ``BUS_CURVE=on`` and kept for the later ones. Subscribers need its public key (the ready
  line's ``bus_public_key``).
- ``clients/NAME.key``: the public keys of the subscribers allowed on the bus.
- ``client-keys/NAME.key_secret`` (and ``NAME.key``): the key pairs that
  ``python -m backend --allow-bus-client NAME`` makes, for the machine that subscribes as NAME.

Every folder is for its owner only (0700), every file too (0600). ``zmq.auth.load_certificate``
reads each file as ``(public, secret)``, Z85-encoded; a ``.key`` file has no secret.

:class:`AllowedKeys` is the allow-list as it is on disk at each look: a look lists
``clients/`` (each file's name, size and modification time) and reads the files again only when
that listing changed, so a key counts from the moment its file is written and stops counting
once the file is deleted (which revokes it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, NamedTuple

import zmq.auth

from backend.runtime.settings import CURVE_ON, SettingsError, config_dir
from backend.security.private_files import OWNER_ONLY, keeping, private_dir, tighten

log = logging.getLogger("feedpool.bus")

BUS_DIR_NAME = "bus"
SERVER = "server"
PUBLIC_SUFFIX, SECRET_SUFFIX = ".key", ".key_secret"
CLIENT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class KeyPair(NamedTuple):
    """A CURVE key pair, Z85-encoded, in the order pyzmq reads them from a certificate file."""

    public: bytes
    secret: bytes


def bus_dir() -> Path:
    return config_dir() / BUS_DIR_NAME


def allowed_clients_dir() -> Path:
    """The public keys of the subscribers allowed on the bus."""
    return bus_dir() / "clients"


def client_keys_dir() -> Path:
    """The key pairs made for subscribers."""
    return bus_dir() / "client-keys"


def server_keys() -> KeyPair:
    """The backend's key pair, made on first use; :class:`SettingsError` if it is unreadable,
    :class:`~backend.security.private_files.PrivateFileError` if it cannot be made."""
    secret_file = bus_dir() / f"{SERVER}{SECRET_SUFFIX}"
    if not secret_file.is_file():
        remedy = f"make {config_dir()} a folder you can write to, or set BUS_CURVE=off"
        with keeping("the bus's CURVE key pair", bus_dir(), remedy):
            _create_pair(bus_dir(), SERVER)
        log.info("Generated the bus's CURVE key pair in %s", bus_dir())
    try:
        return _load_pair(secret_file)
    except (OSError, ValueError) as exc:
        raise SettingsError(
            "BUS_CURVE",
            CURVE_ON,
            f"cannot read the bus's key pair in {secret_file} ({exc}); "
            "delete it and server.key to generate a new one (every client needs the new "
            "server key then)",
        ) from None


def allow_client(name: str) -> dict[str, Any]:
    """A key pair for the subscriber ``name`` (made unless it exists), its public key allowed.

    What a subscriber needs, by name: ``public_key_file``, ``secret_key_file``, ``public_key``
    and ``server_public_key`` (the server's pair is made if missing). :class:`ValueError` if
    ``name`` is not a safe file name.
    """
    if not CLIENT_NAME.fullmatch(name):
        raise ValueError(f"bus client name {name!r}: expected 1 to 64 letters, digits, '-' or '_'")
    server = server_keys()
    keys = client_keys_dir()
    secret_file, public_file = keys / f"{name}{SECRET_SUFFIX}", keys / f"{name}{PUBLIC_SUFFIX}"
    if not secret_file.is_file():
        _create_pair(keys, name)
    pair = _load_pair(secret_file)
    allowed = private_dir(allowed_clients_dir()) / public_file.name
    shutil.copyfile(public_file, allowed)
    allowed.chmod(OWNER_ONLY)
    log.info("Bus client %s allowed: public key %s", name, pair.public.decode())
    return {
        "name": name,
        "public_key_file": str(public_file),
        "secret_key_file": str(secret_file),
        "public_key": pair.public.decode(),
        "server_public_key": server.public.decode(),
    }


def _create_pair(directory: Path, name: str) -> None:
    """``name.key`` and ``name.key_secret`` in ``directory``, owner-only before they appear."""
    private_dir(directory)
    with tempfile.TemporaryDirectory(dir=directory) as temporary:
        made = [Path(path) for path in zmq.auth.create_certificates(temporary, name)]
        for path in made:  # the public file first: the secret one marks the pair complete
            path.chmod(OWNER_ONLY)
            os.replace(path, directory / path.name)


def _load_pair(secret_file: Path) -> KeyPair:
    tighten(secret_file)
    public, secret = zmq.auth.load_certificate(secret_file)
    if not secret:
        raise ValueError("it holds no secret key")
    return KeyPair(public, secret)


class AllowedKeys:
    """The public keys (Z85) allowed in ``directory``, as they are when :meth:`current` is called.

    Thread-safe. An unreadable file allows nothing and is logged once per change of the folder.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._listing: frozenset[tuple[str, int, int]] | None = None
        self._keys: frozenset[bytes] = frozenset()

    def current(self) -> frozenset[bytes]:
        with self._lock:
            listing = self._read_listing()
            if listing != self._listing:
                self._listing, self._keys = listing, self._read_keys(listing)
            return self._keys

    def _read_listing(self) -> frozenset[tuple[str, int, int]]:
        """The key files' names, sizes and modification times; none without the folder."""
        listing = set()
        with contextlib.suppress(FileNotFoundError), os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.name.endswith(PUBLIC_SUFFIX):
                    with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                        stat = entry.stat()
                        listing.add((entry.name, stat.st_size, stat.st_mtime_ns))
        return frozenset(listing)

    def _read_keys(self, listing: frozenset[tuple[str, int, int]]) -> frozenset[bytes]:
        keys = set()
        for name, _, _ in listing:
            try:
                public, _ = zmq.auth.load_certificate(self.directory / name)
            except (OSError, ValueError) as exc:
                log.warning("Ignored the bus client key file %s: %s", name, exc)
                continue
            keys.add(public)
        return frozenset(keys)
