"""``python -m backend``: FeedPool's backend process.

Starts the exchange simulator (when ``BROKER=simulator``), the bus, the pool and the client API.
Once everything listens it prints one JSON line on stdout and nothing else, a
:class:`~backend.bus.messages.Ready`::

    {"event":"ready","ws":"ws://127.0.0.1:8765","zmq":"tcp://127.0.0.1:5555",
     "tls_fingerprint":null,"bus_public_key":null,"pid":1234,"broker":"simulator"}

``ws`` is ``wss://`` with ``WEBSOCKET_TLS``, and ``tls_fingerprint`` its certificate's SHA-256
(:func:`backend.security.tls.fingerprint`); ``bus_public_key`` is the bus's CURVE key (Z85) with
``BUS_CURVE=on``. Both URLs are as a client on this machine dials them: a wildcard bind host is
given as loopback.

A backend that cannot start prints ``{"event":"error","code":...,"message":...}`` (a
:class:`~backend.bus.messages.StartupFailure`) instead and exits with status 1 (2 for a bad
setting, or ``INSECURE_REMOTE``), whatever stopped it: a settings file that cannot be read, a
config dir where its keys cannot be kept (``CONFIG_DIR_ERROR``), or a failure nothing foresaw
(``UNEXPECTED_ERROR``, with its type and message), never with a traceback
(:func:`backend.runtime.service.startup_error`). So do ``--print-api-key`` and
``--allow-bus-client``. Logs go to stderr, to a rotating file in the user log dir, and to the bus
(``SYS.LOG``); stderr and the bus number each record alike.

SIGINT and SIGTERM close the clients (1001), the broker connections and the bus, and exit 0 within
:data:`SHUTDOWN_SECONDS`; during start-up they end the start-up, and no ready line is printed.
With ``--parent-pid PID`` the backend also stops when that process ends, so it never outlives
the desktop app that started it. ``--print-api-key`` prints the key clients
authenticate with (generating it on first use) and exits.

``--allow-bus-client NAME`` starts no backend: it makes a CURVE key pair for the bus subscriber
NAME (unless it has one), allows its public key on the bus (a running backend lets it in at once)
and prints one JSON line, a :class:`~backend.bus.messages.BusClient` (see
:mod:`backend.bus.keys`). A NAME that is not 1 to 64 letters, digits, ``-`` or ``_`` is an error
line, with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import logging.handlers
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any

import msgspec

from backend.bus.keys import allow_client, client_keys_dir
from backend.bus.messages import BackendLine, BusClient, Ready, StartupFailure
from backend.logs.bus_handler import number_records
from backend.runtime import collector, event_loop
from backend.runtime.process_watch import process_ended
from backend.runtime.service import SETTING_ERRORS, Backend, StartupError, startup_error
from backend.runtime.settings import Settings, SettingsError, config_dir, load_settings, log_dir
from backend.security.api_key import api_key
from backend.security.private_files import keeping

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


def emit(event: BackendLine) -> None:
    """Print ``event`` as one JSON line (UTF-8) on stdout, at once."""
    sys.stdout.buffer.write(msgspec.json.encode(event) + b"\n")
    sys.stdout.buffer.flush()


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


async def unless_stopped(starting: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Await ``starting``, cancelling it if ``stop`` is set first; whether it ended before
    ``stop`` was set. What it raised is raised."""
    start = asyncio.ensure_future(starting)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait((start, stopped), return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    start.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await start
    return not stop.is_set()


async def serve(settings: Settings, parent_pid: int | None) -> int:
    """Run the backend until a signal or the parent's end; the exit status. A signal during
    start-up ends the start-up, and no ready line is printed."""
    stop = asyncio.Event()
    on_signals(stop)
    backend = Backend(settings)
    try:
        started = await unless_stopped(backend.start(), stop)
    except Exception as exc:  # foreseen or not, a failed start-up ends in the error line
        status = refuse(startup_error(exc, settings))
        await backend.stop()
        return status
    watcher = None
    if started:
        collector.settle()
        emit(Ready(**backend.endpoints(), pid=os.getpid(), broker=settings.BROKER))
        if parent_pid is not None:
            watcher = asyncio.get_running_loop().create_task(watch_parent(parent_pid, stop))
        await stop.wait()
    log.info("Stopping" if started else "Stopping during start-up")
    if watcher is not None:
        watcher.cancel()
    try:
        await asyncio.wait_for(backend.stop(), SHUTDOWN_SECONDS - SHUTDOWN_MARGIN)
    except TimeoutError:
        log.warning("Shutdown took longer than %g s; exiting anyway", SHUTDOWN_SECONDS)
        backend.publisher.close()
    return 0


def refuse(error: StartupError) -> int:
    """Log ``error`` and print its error line; the exit status (2 for a bad setting or
    argument, else 1)."""
    log.error("FeedPool cannot start: %s", error.message)
    emit(StartupFailure(code=error.code, message=error.message))
    bad_setting = error.code in SETTING_ERRORS or error.code == INVALID_ARGUMENT
    return EXIT_BAD_SETTING if bad_setting else EXIT_CANNOT_START


def allow_bus_client(name: str) -> int:
    """``--allow-bus-client NAME``: print the subscriber's ``bus_client`` line; the exit status."""
    remedy = f"make {config_dir()} a folder you can write to"
    try:
        with keeping(f"the keys of bus client {name}", client_keys_dir(), remedy):
            emit(BusClient(**allow_client(name)))
    except SettingsError:
        raise
    except ValueError as exc:  # a NAME that cannot be a file's
        return refuse(StartupError(INVALID_ARGUMENT, str(exc)))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging()
    settings = None
    try:
        if args.allow_bus_client is not None:
            return allow_bus_client(args.allow_bus_client)
        settings = load_settings()
        if args.print_api_key:
            print(api_key(settings).reveal(), flush=True)
            return 0
        with contextlib.suppress(KeyboardInterrupt):
            return event_loop.run(serve(settings, args.parent_pid))
        return 0
    except Exception as exc:  # the last resort: whatever stops it ends in the error line
        return refuse(startup_error(exc, settings))


if __name__ == "__main__":
    sys.exit(main())
