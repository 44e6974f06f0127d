"""Deciding what an import adds to the watchlist, and the summary every import ends with.

An import adds entries the watchlist does not hold yet and the instrument master knows; it skips
duplicates (of the watchlist or earlier in the same input), lists unknown symbols and lines not
understood. No Qt here.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass, field

from backend.instruments.master import InstrumentMaster
from backend.instruments.symbol_lists import ParseResult, WatchEntry

LISTED_AT_MOST = 5  # items of a list named in the one-line summary; the details list more
DETAILS_AT_MOST = 50
SEVERITY_ORDER = ("ok", "warning", "error")


@dataclass
class ImportSummary:
    """The outcome of one import, from one source (a file name, "pasted text", ...)."""

    source: str
    added: list[WatchEntry] = field(default_factory=list)
    duplicates: int = 0
    unknown: list[WatchEntry] = field(default_factory=list)
    not_understood: list[str] = field(default_factory=list)
    error: str | None = None
    master_checked: bool = True

    @property
    def severity(self) -> str:
        """``error`` when nothing usable was found, ``warning`` when something was refused or
        nothing new was added, else ``ok``."""
        if self.error or not (self.added or self.duplicates):
            return "error"
        if self.unknown or self.not_understood or not self.added:
            return "warning"
        return "ok"

    def text(self) -> str:
        """One paragraph saying what happened."""
        if self.error:
            return f"{self.error}. The watchlist is unchanged."
        found = self.added or self.duplicates or self.unknown
        parts = [f"added {len(self.added)}" if found else "no symbols found"]
        if self.duplicates:
            parts.append(f"duplicates skipped {self.duplicates}")
        if self.unknown:
            names = _listed([entry.label for entry in self.unknown], LISTED_AT_MOST)
            parts.append(f"unknown symbols {len(self.unknown)} ({names})")
        if self.not_understood:
            lines = _listed(self.not_understood, LISTED_AT_MOST)
            parts.append(f"lines not understood {len(self.not_understood)} ({lines})")
        text = f"{self.source}: " + "; ".join(parts) + "."
        if not self.added:
            text += " The watchlist is unchanged."
        if not self.master_checked:
            text += " Symbols were not checked: the instrument master is not available."
        return text

    def details(self) -> str:
        """The longer lists, for a tooltip."""
        lines = []
        if self.unknown:
            lines.append("Unknown symbols:")
            lines += [f"  {entry.label}" for entry in self.unknown[:DETAILS_AT_MOST]]
        if self.not_understood:
            lines.append("Lines not understood:")
            lines += [f"  {problem}" for problem in self.not_understood[:DETAILS_AT_MOST]]
        return "\n".join(lines)


def _listed(items: Sequence[str], at_most: int) -> str:
    shown = ", ".join(items[:at_most])
    return shown + (f" and {len(items) - at_most} more" if len(items) > at_most else "")


def plan_import(
    parsed: ParseResult,
    existing: Container[tuple[str, str]],
    master: InstrumentMaster | None,
    source: str,
) -> ImportSummary:
    """What to add from ``parsed`` to a watchlist holding ``existing`` keys.

    Without a master (none could be loaded) every well-formed entry is accepted, and the summary
    says the symbols were not checked.
    """
    summary = ImportSummary(
        source=source,
        not_understood=list(parsed.not_understood),
        error=parsed.error,
        master_checked=master is not None,
    )
    if parsed.error:
        return summary
    seen: set[tuple[str, str]] = set()
    for entry in parsed.entries:
        if entry.key in existing or entry.key in seen:
            summary.duplicates += 1
        elif master is not None and entry.key not in master:
            summary.unknown.append(entry)
        else:
            summary.added.append(entry)
        seen.add(entry.key)
    return summary
