"""Where a strategy reaches the backend's client API, and with which key.

:func:`follow_link` tells the connect dialog each time that changes: when a backend the app runs
is ready (its ready line's ``ws`` URL, and the key its settings give), and when the app attaches
to another backend (the attachment's URL and key).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from backend.bus.messages import Ready
from backend.runtime.settings import SettingsError
from desktop.link.attachment import Attachment
from desktop.link.backend_link import BackendLink, client_api_key

log = logging.getLogger("feedpool.desktop.strategy")


@dataclass(frozen=True, slots=True)
class ApiAccess:
    """The client API's URL and key; ``pinned`` when it serves TLS with a certificate trusted by
    its fingerprint only (the backend's own), which a strategy must be told to trust."""

    url: str
    key: str = field(repr=False)
    pinned: bool = False


def follow_link(link: BackendLink, show: Callable[[ApiAccess], None]) -> None:
    """Call ``show`` with the API's access whenever ``link`` reaches a backend."""
    process = link.process
    if process is not None:

        def ready(ready: Ready) -> None:
            try:
                key = client_api_key(process.environ())
            except SettingsError as exc:
                log.error("Cannot read the API key for strategies: %s", exc)
                return
            show(ApiAccess(ready.ws, key, pinned=bool(ready.tls_fingerprint)))

        process.ready.connect(ready)

    def attached(attachment: Attachment) -> None:
        show(
            ApiAccess(attachment.api_url, attachment.api_key.reveal(), bool(attachment.fingerprint))
        )

    link.attached.connect(attached)
