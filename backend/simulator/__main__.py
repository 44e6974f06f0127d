"""Run the exchange simulator on its own: ``python -m backend.simulator --help``.

Once listening it prints one JSON line on stdout,
``{"event": "ready", "broker": ..., "url": ..., "master": ..., "rest": ..., "pid": ...,
"client_code": ...}`` (never a secret): ``url`` is the WebSocket endpoint (for Kite, the root a
``KiteTicker`` is pointed at), ``master`` the HTTP URL of the instrument master in the broker's
format, ``rest`` the root of the broker's REST logins (a ``SmartConnect`` or ``KiteConnect``
``root=``). It runs until SIGINT or SIGTERM, then exits 0. Meanwhile it reads JSON commands on
stdin, one per line, and answers each with one JSON line on stdout:

- ``{"command": "drop", "connection": N}``: close connection N abruptly;
  ``{"event": "dropped", "connection": N}``;
- ``{"command": "mute", "connection": N}``: connection N stays open and answers requests and
  pings, but sends no more ticks (a Kite connection keeps its heartbeat);
  ``{"event": "muted", "connection": N}``;
- ``{"command": "expire_sessions"}``: the broker's sessions end: every open connection closes
  and every token issued so far is refused (Angel One HTTP 401, Kite HTTP 403) until a fresh
  login; ``{"event": "sessions_expired"}``;
- ``{"command": "rate", "ticks_per_second": R}``: every held token ticks R times a second on
  average from its next tick on (R more than 0; a simulator started at 0 sends snapshots only);
  ``{"event": "rate", "ticks_per_second": R}``;
- ``{"command": "connections"}``: ``{"event": "connections", "connections": [{"id",
  "client_code", "token_count", "tokens": [...], "backlogged"}, ...]}``, each token
  ``[exchangeType, token]`` (SmartStream) or an instrument token (Kite); a backlogged
  connection's client is not reading, and it gets no ticks until it does;
- anything else: ``{"event": "error", "message": ...}``.

The end of stdin ends the commands, not the simulator. A stdin that is not a pipe, a socket or a
terminal (``/dev/null``, a file, none) carries no commands: the simulator says so once on stderr
and runs without them. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import stat
import sys
from collections.abc import Callable
from typing import Any

from backend.brokers import BROKERS, FAMILIES, Broker
from backend.instruments.master import MasterFormatError, load_master
from backend.runtime import collector, event_loop
from backend.runtime.resources import resource_path
from backend.simulator.credentials import (
    TOTP_SECRET_RULE,
    SimulatorCredentials,
    is_totp_secret,
)
from backend.simulator.server import ExchangeSimulator

DEFAULTS = SimulatorCredentials()


def each_broker(figure: Callable[[Broker], object]) -> str:
    """Each broker's name and ``figure``, for the help: ``angel 1000, zerodha 3000``."""
    return ", ".join(f"{name} {figure(broker)}" for name, broker in BROKERS.items())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m backend.simulator",
        description="A local broker with simulated prices: "
        + " or ".join(broker.label for broker in BROKERS.values())
        + ".",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--broker",
        choices=sorted([*BROKERS, *FAMILIES]),
        default="angel",
        help=f"the broker to play: {each_broker(lambda broker: f'({broker.label})')}; or a "
        "family's vendor, with --vendor: "
        + "; ".join(f"{family} ({', '.join(names)})" for family, names in FAMILIES.items()),
    )
    parser.add_argument(
        "--vendor", help="with a family as --broker: the vendor to play (default: its first)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one")
    parser.add_argument("--client-code", default=DEFAULTS.client_code, help="accepted client code")
    parser.add_argument("--api-key", default=DEFAULTS.api_key, help="accepted API key")
    parser.add_argument("--feed-token", default=DEFAULTS.feed_token, help="accepted feed token")
    parser.add_argument("--auth-token", default=DEFAULTS.auth_token, help="accepted auth token")
    parser.add_argument(
        "--access-token", default=DEFAULTS.access_token, help="accepted access token (Kite, Dhan)"
    )
    parser.add_argument("--pin", default=DEFAULTS.pin, help="Angel One login PIN")
    parser.add_argument(
        "--totp-secret",
        default=DEFAULTS.totp_secret,
        help="Angel One TOTP secret (base32) that login codes are checked against",
    )
    parser.add_argument(
        "--api-secret",
        default=DEFAULTS.api_secret,
        help="the app's API secret (Kite's checksum, Dhan's consent)",
    )
    parser.add_argument(
        "--redirect-url",
        default=DEFAULTS.redirect_url,
        help="the broker app's registered redirect URL, where the login page sends the user",
    )
    parser.add_argument(
        "--ticks-per-second",
        type=float,
        default=1.0,
        help="mean ticks per second per subscribed token; 0 sends snapshots only",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="repeatable prices and timing; none: a fresh market"
    )
    parser.add_argument(
        "--master",
        default=str(resource_path("instruments.csv")),
        help="instrument master in the bundled CSV format",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help="concurrent connections per account (default: the broker's, "
        f"{each_broker(lambda broker: broker.max_connections)})",
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        help="tokens per connection (default: the broker's, "
        f"{each_broker(lambda broker: broker.max_symbols)})",
    )
    args = parser.parse_args(argv)
    family, vendors = args.broker, FAMILIES.get(args.broker)
    if vendors:
        args.broker = args.vendor or vendors[0]
        if args.broker not in vendors:
            parser.error(f"--vendor must be one of {', '.join(vendors)} with --broker {family}")
    elif args.vendor:
        parser.error(f"--vendor goes with a family as --broker: {', '.join(FAMILIES)}")
    if args.ticks_per_second < 0:
        parser.error("--ticks-per-second must be 0 or more")
    if (args.max_connections or 1) < 1 or (args.max_tokens or 1) < 1:
        parser.error("--max-connections and --max-tokens must be 1 or more")
    if not is_totp_secret(args.totp_secret):
        parser.error(f"--totp-secret must be {TOTP_SECRET_RULE}")
    if not args.redirect_url.startswith(("http://", "https://")):
        parser.error("--redirect-url must be an http:// or https:// URL")
    return args


def emit(event: dict[str, Any]) -> None:
    """Print one JSON line on stdout, at once."""
    print(json.dumps(event), flush=True)


async def answer(simulator: ExchangeSimulator, line: str) -> dict[str, Any]:
    """The reply to one command line."""
    try:
        command = json.loads(line)
    except ValueError:
        return {"event": "error", "message": "a command must be one JSON object per line"}
    name = command.get("command") if isinstance(command, dict) else None
    if name == "connections":
        return {
            "event": "connections",
            "connections": [
                {
                    "id": info.id,
                    "client_code": info.client_code,
                    "token_count": info.token_count,
                    "tokens": sorted(info.tokens),
                    "backlogged": info.backlogged,
                }
                for info in simulator.connections
            ],
        }
    if name == "expire_sessions":
        await simulator.expire_sessions()
        return {"event": "sessions_expired"}
    if name == "rate":
        rate = command.get("ticks_per_second")
        try:
            simulator.set_rate(rate)
        except (TypeError, ValueError) as exc:
            return {"event": "error", "message": f"rate: {exc}"}
        return {"event": "rate", "ticks_per_second": rate}
    if name in ("drop", "mute"):
        connection = command.get("connection")
        if not isinstance(connection, int) or isinstance(connection, bool):
            return {"event": "error", "message": f"{name} needs an integer 'connection'"}
        try:
            if name == "drop":
                await simulator.drop(connection)
            else:
                simulator.mute(connection)
        except KeyError:
            return {"event": "error", "message": f"no open connection {connection}"}
        return {"event": "dropped" if name == "drop" else "muted", "connection": connection}
    return {
        "event": "error",
        "message": f"unknown command {name!r}; "
        "known: connections, drop, mute, rate, expire_sessions",
    }


def commands_refused() -> str | None:
    """Why stdin carries no commands, or ``None`` when it is a stream: a pipe, a socket or a
    terminal.

    Anything else (``/dev/null``, a regular file, no stdin at all, as under a service manager,
    ``nohup`` or cron) is refused before it reaches the loop: uvloop's read pipe aborts the
    process on a regular file or a device that is not a terminal.
    """
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (AttributeError, ValueError, OSError):  # no stdin, or a closed one
        return "there is no stdin"
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(sys.stdin.fileno()):
        return None
    return "stdin is not a pipe, a socket or a terminal"


async def read_commands(simulator: ExchangeSimulator) -> None:
    """Answer command lines from stdin until it ends; none when stdin is not a stream."""
    refused = commands_refused()
    if refused:
        logging.getLogger("feedpool.simulator").warning(
            "commands are off: %s; running without them", refused
        )
        return
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    try:
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
        )
    except (ValueError, OSError, NotImplementedError) as exc:
        logging.getLogger("feedpool.simulator").warning("commands are off: %s", exc)
        return
    try:
        while line := await reader.readline():
            if line.strip():
                emit(await answer(simulator, line.decode("utf-8", "replace")))
    finally:
        transport.close()


async def run(args: argparse.Namespace) -> int:
    try:
        master = load_master(args.master)
    except MasterFormatError as exc:
        emit({"event": "error", "message": str(exc)})
        return 1
    credentials = SimulatorCredentials(
        args.client_code,
        args.api_key,
        args.feed_token,
        args.auth_token,
        args.access_token,
        pin=args.pin,
        totp_secret=args.totp_secret,
        api_secret=args.api_secret,
        redirect_url=args.redirect_url,
    )
    simulator = ExchangeSimulator(
        master,
        credentials,
        broker=args.broker,
        ticks_per_second=args.ticks_per_second,
        seed=args.seed,
        max_connections=args.max_connections,
        max_tokens=args.max_tokens,
    )
    try:
        await simulator.start(args.host, args.port)
    except OSError as exc:
        emit({"event": "error", "message": f"cannot listen on {args.host}:{args.port}: {exc}"})
        return 1

    collector.settle()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except NotImplementedError:  # Windows
            signal.signal(signum, lambda *_: loop.call_soon_threadsafe(stop.set))
    emit(
        {
            "event": "ready",
            "broker": args.broker,
            "url": simulator.url,
            "master": simulator.master_url,
            "rest": simulator.rest_url,
            "pid": os.getpid(),
            "client_code": args.client_code,
        }
    )
    commands = asyncio.create_task(read_commands(simulator))
    try:
        await stop.wait()
    finally:
        commands.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await commands
        await simulator.stop()
    return 0


def hold_closed_stdin() -> None:
    """Open the null device as descriptor 0 when stdin is closed, so that no socket gets it:
    uvloop aborts the process when it closes a descriptor below 3."""
    try:
        os.fstat(0)
    except OSError:
        os.open(os.devnull, os.O_RDONLY)  # the lowest free descriptor: 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    hold_closed_stdin()
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    return event_loop.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
