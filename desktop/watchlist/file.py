"""The watchlist on disk: a JSON file in the user data dir, and a CSV export.

The JSON file is ``{"version": 1, "symbols": [{"symbol", "exchange", "mode"}, ...]}``, written
to a temporary file first and then renamed over the old one, so a crash never leaves half a
watchlist. The CSV export has the watchlist table's columns; its symbol, exchange and mode
columns make it importable again.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path

from backend.instruments.symbol_lists import DEFAULT_MODE, EntryError, WatchEntry, make_entry
from backend.runtime.settings import data_dir
from desktop.atomic_write import write_atomically
from desktop.tables.columns import text_rows
from desktop.watchlist.columns import WATCHLIST_COLUMNS, WatchRow

WATCHLIST_FILE_NAME = "watchlist.json"
FORMAT_VERSION = 1


class WatchlistFileError(ValueError):
    """A watchlist file FeedPool cannot read."""


def default_watchlist_path() -> Path:
    return data_dir() / WATCHLIST_FILE_NAME


def save_watchlist(entries: Iterable[WatchEntry], path: Path) -> None:
    symbols = [
        {"symbol": entry.symbol, "exchange": entry.exchange, "mode": entry.mode}
        for entry in entries
    ]
    write_atomically(path, json.dumps({"version": FORMAT_VERSION, "symbols": symbols}, indent=1))


def load_watchlist(path: Path) -> list[WatchEntry]:
    """The saved entries; none if there is no file; :class:`WatchlistFileError` if it is bad."""
    if not path.is_file():
        return []
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        items = document["symbols"]
        if not isinstance(items, list):
            raise TypeError("symbols is not a list")
        return [
            make_entry(str(item["symbol"]), str(item["exchange"]), item.get("mode"), DEFAULT_MODE)
            for item in items
        ]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WatchlistFileError(f"cannot read the watchlist {path}: {exc}") from None
    except (KeyError, TypeError, EntryError) as exc:
        raise WatchlistFileError(
            f"the watchlist {path} is not in FeedPool's format: {exc}"
        ) from None


def export_watchlist_csv(rows: Iterable[WatchRow], path: Path) -> int:
    """Write the rows as the table shows them; the number of rows written."""
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(column.title for column in WATCHLIST_COLUMNS)
        for cells in text_rows(WATCHLIST_COLUMNS, rows):
            writer.writerow(cells)
            count += 1
    return count
