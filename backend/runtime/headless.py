"""``python -m backend.runtime.headless``: the backend without a window, pool statistics in the
terminal.

Starts the backend on the configured broker (the bundled simulator by default), subscribes a
symbol list (the bundled sample watchlist unless a file is given), and prints one line of pool
statistics a second until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from pathlib import Path

from backend.instruments.symbol_lists import EntryError, parse_file
from backend.pool.connection_pool import ConnectionPool
from backend.runtime.resources import resource_path
from backend.runtime.service import Backend
from backend.runtime.settings import SettingsError, load_settings

HOLDER = "headless"


def read_symbols(path: Path) -> dict[int, list[tuple[str, str]]]:
    """``mode -> [(symbol, exchange)]`` from a symbol list; :class:`EntryError` if unreadable."""
    result = parse_file(path)
    if result.error:
        raise EntryError(result.error)
    for line in result.not_understood:
        print(f"{path.name}: not understood: {line}")
    by_mode: dict[int, list[tuple[str, str]]] = {}
    for entry in result.entries:
        by_mode.setdefault(entry.mode, []).append((entry.symbol, entry.exchange))
    return by_mode


def stats_line(pool: ConnectionPool) -> str:
    """One line of the pool's statistics (:class:`~backend.bus.messages.PoolStats`)."""
    stats = pool.get_stats()
    parts = [
        time.strftime("%H:%M:%S"),
        f"{stats.total_symbols:,}/{stats.capacity:,} symbols "
        f"({stats.utilisation_percent:.0f}%), peak {stats.peak_symbols:,}",
    ]
    for c in stats.connections:
        parts.append(
            f"#{c.index} {c.state} {c.symbols}/{c.capacity} {c.ticks_per_second:.0f} ticks/s"
        )
    return " | ".join(parts)


async def run(symbol_file: Path) -> None:
    backend = Backend(load_settings())
    await backend.start()
    try:
        for mode, symbols in read_symbols(symbol_file).items():
            if symbols:
                outcomes = await backend.pool.subscribe_many(symbols, mode, HOLDER)
                for outcome in outcomes:
                    if not outcome.ok:
                        print(f"{outcome.symbol} {outcome.exchange}: {outcome.message}")
        while True:
            print(stats_line(backend.pool), flush=True)
            await asyncio.sleep(1)
    finally:
        await backend.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.runtime.headless", description=__doc__)
    parser.add_argument(
        "symbols",
        nargs="?",
        type=Path,
        default=resource_path("watchlists", "sample.csv"),
        help="a .csv (symbol, exchange, optional mode columns) or .txt (EXCHANGE:SYMBOL lines) "
        "symbol list (default: the sample watchlist)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run(args.symbols))
    except (SettingsError, EntryError) as exc:
        print(f"FeedPool cannot start: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
