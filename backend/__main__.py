"""``python -m backend``: FeedPool's backend process.

Starts the exchange simulator (when ``BROKER=simulator``), the bus, the pool and the client API.
Once everything listens it prints one JSON line on stdout and nothing else::

    {"event": "ready", "ws": "ws://127.0.0.1:8765", "zmq": "tcp://127.0.0.1:5555",
     "tls_fingerprint": null, "bus_public_key": null, "pid": 1234, "broker": "simulator"}

``ws`` is ``wss://`` with ``WEBSOCKET_TLS``, and ``tls_fingerprint`` its certificate's SHA-256
(:func:`backend.tls.fingerprint`); ``bus_public_key`` is the bus's CURVE key (Z85) with
``BUS_CURVE=on``. Both URLs are as a client on this machine dials them: a wildcard bind host is
given as loopback.

A backend that cannot start prints ``{"event": "error", "code": ..., "message": ...}`` instead and
exits with status 1 (2 for a bad setting, or ``INSECURE_REMOTE``). Logs go to stderr, to a
rotating file in the user log dir, and to the bus (``SYS.LOG``); stderr and the bus number each
record alike.

SIGINT and SIGTERM close the clients (1001), the broker connections and the bus, and exit 0 within
:data:`SHUTDOWN_SECONDS`. With ``--parent-pid PID`` the backend also stops when that process ends,
so it never outlives the desktop app that started it. ``--print-api-key`` prints the key clients
authenticate with (generating it on first use) and exits.

``--allow-bus-client NAME`` starts no backend: it makes a CURVE key pair for the bus subscriber
NAME (unless it has one), allows its public key on the bus (a running backend lets it in within a
second) and prints one JSON line, ``{"event": "bus_client", "name", "public_key_file",
"secret_key_file", "public_key", "server_public_key"}`` (see :mod:`backend.bus_keys`). A NAME that
is not 1 to 64 letters, digits, ``-`` or ``_`` is an error line, with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import logging.handlers
import os
import signal
import sys
from typing import Any

from backend import collector, event_loop
from backend.apikey import api_key
from backend.bus_keys import allow_client
from backend.log_bus import number_records
from backend.process_watch import process_ended
from backend.service import INVALID_SETTING, SETTING_ERRORS, Backend, StartupError
from backend.settings import Settings, SettingsError, load_settings, log_dir

log = logging.getLogger("feedpool.backend")

SHUTDOWN_SECONDS = 2.0
#: Time left for the last steps of shutdown (the bus's linger) after the parts are closed.
SHUTDOWN_MARGIN = 0.4
LOG_FILE_NAME = "backend.log"
LOG_FILE_BYTES = 5 * 2**20
LOG_FILE_COUNT = 5
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
#: stderr's lines carry each record's number (``SYS.LOG``'s ``sequence``) after the time.
STDERR_FORMAT = "%(asctime)s #%(sequence)d %(levelname)s %(name)s %(message)s"
EXIT_CANNOT_START = 1
EXIT_BAD_SETTING = 2
INVALID_ARGUMENT = "INVALID_ARGUMENT"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m backend",
        description="FeedPool's backend: pooled broker feeds served on an OpenAlgo-compatible "
        "WebSocket API.",
    )
    parser.add_argument(
        "--parent-pid",
        type=int,
        metavar="PID",
        help="stop when the process PID ends (the desktop app passes its own)",
    )
    parser.add_argument(
        "--print-api-key",
        action="store_true",
        help="print the API key clients authenticate with, and exit",
    )
    parser.add_argument(
        "--allow-bus-client",
        metavar="NAME",
        help="make a key pair for the bus subscriber NAME, allow it on the bus (BUS_CURVE=on), "
        "print where it is as one JSON line, and exit",
    )
    return parser.parse_args(argv)


def emit(event: dict[str, Any]) -> None:
    """Print one JSON line on stdout, at once."""
    print(json.dumps(event), flush=True)


def configure_logging() -> None:
    """Human-readable logs on stderr and in a rotating file in the user log dir; records
    numbered."""
    number_records()
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter(STDERR_FORMAT))
    root.addHandler(console)
    try:
        directory = log_dir()
        directory.mkdir(parents=True, exist_ok=True)
        file = logging.handlers.RotatingFileHandler(
            directory / LOG_FILE_NAME,
            maxBytes=LOG_FILE_BYTES,
            backupCount=LOG_FILE_COUNT,
            encoding="utf-8",
        )
    except OSError as exc:
        log.warning("No log file: %s", exc)
        return
    file.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(file)


async def watch_parent(pid: int, stop: asyncio.Event) -> None:
    """Set ``stop`` when process ``pid`` has ended."""
    await process_ended(pid)
    log.warning("Parent process %d has ended; stopping", pid)
    stop.set()


def on_signals(stop: asyncio.Event) -> None:
    """Set ``stop`` on SIGINT and SIGTERM."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except NotImplementedError:  # Windows
            signal.signal(signum, lambda *_: loop.call_soon_threadsafe(stop.set))


async def serve(settings: Settings, parent_pid: int | None) -> int:
    """Run the backend until a signal or the parent's end; the exit status."""
    stop = asyncio.Event()
    on_signals(stop)
    backend = Backend(settings)
    try:
        await backend.start()
    except StartupError as exc:
        log.error("FeedPool cannot start: %s", exc.message)
        emit({"event": "error", "code": exc.code, "message": exc.message})
        await backend.stop()
        return EXIT_BAD_SETTING if exc.code in SETTING_ERRORS else EXIT_CANNOT_START
    collector.settle()
    emit({"event": "ready", **backend.endpoints(), "pid": os.getpid(), "broker": settings.BROKER})
    watcher = None
    if parent_pid is not None:
        watcher = asyncio.get_running_loop().create_task(watch_parent(parent_pid, stop))
    await stop.wait()
    log.info("Stopping")
    if watcher is not None:
        watcher.cancel()
    try:
        await asyncio.wait_for(backend.stop(), SHUTDOWN_SECONDS - SHUTDOWN_MARGIN)
    except TimeoutError:
        log.warning("Shutdown took longer than %g s; exiting anyway", SHUTDOWN_SECONDS)
        backend.publisher.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging()
    if args.allow_bus_client is not None:
        try:
            emit({"event": "bus_client", **allow_client(args.allow_bus_client)})
        except SettingsError as exc:
            emit({"event": "error", "code": INVALID_SETTING, "message": str(exc)})
            return EXIT_BAD_SETTING
        except ValueError as exc:
            emit({"event": "error", "code": INVALID_ARGUMENT, "message": str(exc)})
            return EXIT_BAD_SETTING
        return 0
    try:
        settings = load_settings()
    except SettingsError as exc:
        emit({"event": "error", "code": INVALID_SETTING, "message": str(exc)})
        return EXIT_BAD_SETTING
    if args.print_api_key:
        print(api_key(settings).reveal(), flush=True)
        return 0
    with contextlib.suppress(KeyboardInterrupt):
        return event_loop.run(serve(settings, args.parent_pid))
    return 0


if __name__ == "__main__":
    sys.exit(main())
