"""The desktop app's command line: which backend the app watches.

Without ``--attach`` the app runs its own backend. ``--attach NAME`` attaches to a backend saved
from the attach dialog (File > Attach to a backend...); ``--attach URL`` to the backend whose
client API is at URL, with the other flags below. The API key is never an argument, which other
users of the machine could read: it is taken from the environment variable ``--api-key-env``
names. No Qt here: ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from desktop.link.attachment import Attachment, AttachmentError, make_attachment
from desktop.settings.attachments import default_attachments_path, load_attachment, saved_names

DEFAULT_KEY_VARIABLE = "FEEDPOOL_API_KEY"
#: The flag that gives each field of an attachment, to name it in an error.
FLAGS = {
    "name": "--attach",
    "api_url": "--attach",
    "bus": "--bus",
    "api_key": "--api-key-env",
    "fingerprint": "--fingerprint",
    "ca_file": "--ca-file",
    "bus_server_key": "--bus-server-key",
    "bus_client_key_file": "--bus-client-key",
}
EPILOG = """\
examples:
  FeedPool --attach office
  FEEDPOOL_API_KEY=... FeedPool --attach wss://10.0.0.5:8765 --bus tcp://10.0.0.5:5555 \\
      --fingerprint 3f2a...c9 --bus-server-key 'rq:rM>}U?@Lns47E1kR.o@nFcmmsL/@{H8]yf7AB' \\
      --bus-client-key ~/desk.key_secret

The same program also runs the backend alone (FeedPool --backend [--help]) and checks an
installation (FeedPool --self-test); from source, python -m desktop takes the same arguments.
"""


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="FeedPool",
        description="FeedPool's desktop app. It runs its own backend, or attaches to one that\n"
        "runs elsewhere and watches it without starting, restarting or stopping it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--attach",
        metavar="NAME|URL",
        help="attach to the saved attachment NAME, or to the client API at URL (ws://HOST:PORT "
        "or wss://HOST:PORT) described by the flags below",
    )
    given = parser.add_argument_group("an attachment given by URL")
    given.add_argument("--bus", metavar="tcp://HOST:PORT", help="the backend's bus (its zmq)")
    given.add_argument(
        "--api-key-env",
        metavar="VARIABLE",
        default=DEFAULT_KEY_VARIABLE,
        help="the environment variable holding the backend's API key (default: %(default)s)",
    )
    given.add_argument(
        "--fingerprint",
        metavar="HEX",
        help="for wss://: the SHA-256 of the backend's certificate to pin (its tls_fingerprint)",
    )
    given.add_argument("--ca-file", metavar="PATH", help="for wss://: verify against this CA")
    given.add_argument(
        "--bus-server-key",
        metavar="Z85",
        help="for a CURVE bus: the bus server's public key (the backend's bus_public_key)",
    )
    given.add_argument(
        "--bus-client-key",
        metavar="PATH",
        help="for a CURVE bus: this app's secret key file (python -m backend --allow-bus-client)",
    )
    return parser


def parse_command_line(
    arguments: list[str],
    environ: Mapping[str, str] = os.environ,
    saved: Path | None = None,
) -> Attachment | None:
    """The attachment ``arguments`` ask for, ``None`` to run the app's own backend; exits with
    status 2 and a message naming the flag when they are wrong (or prints the help)."""
    command = parser()
    args = command.parse_args(arguments)
    try:
        return _attachment(args, environ, saved or default_attachments_path())
    except AttachmentError as exc:
        command.error(f"{FLAGS[exc.field]}: {exc.problem}")


def _attachment(
    args: argparse.Namespace, environ: Mapping[str, str], saved: Path
) -> Attachment | None:
    given = {
        "bus": args.bus,
        "fingerprint": args.fingerprint,
        "ca_file": args.ca_file,
        "bus_server_key": args.bus_server_key,
        "bus_client_key_file": args.bus_client_key,
    }
    if args.attach is None or "://" not in args.attach:
        if extra := [name for name, value in given.items() if value]:
            raise AttachmentError(extra[0], "goes with --attach URL only")
        return None if args.attach is None else _saved(args.attach, saved)
    key = environ.get(args.api_key_env, "")
    if not key:
        raise AttachmentError(
            "api_key", f"the variable {args.api_key_env} holding the API key is not set"
        )
    name = urlsplit(args.attach).netloc or args.attach
    return make_attachment({**given, "name": name, "api_url": args.attach, "api_key": key})


def _saved(name: str, path: Path) -> Attachment:
    try:
        return load_attachment(name, path)
    except KeyError:
        names = ", ".join(saved_names(path)) or "none"
        raise AttachmentError(
            "name", f"no attachment named {name!r} is saved (saved: {names})"
        ) from None
    except AttachmentError as exc:
        raise AttachmentError("name", f"{name} cannot be used as saved: {exc}") from None
