"""Deciding what an import does to the watchlist, and the summary every import ends with.

An import adds entries the watchlist does not hold yet and the instrument master knows, changes
the mode of those it holds in another mode (keeping their place), skips duplicates (of the
watchlist in the same mode, or earlier in the same input), and lists unknown symbols and lines
not understood. Its summary then counts what the backend answered for the rows it added or
changed: subscribed, waiting for room, rejected, or not answered yet. A mode change chosen from
the watchlist's menu is summarised the same way. No Qt here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from backend.instruments.master import InstrumentMaster
from backend.instruments.symbol_lists import MODE_NAMES, ParseResult, WatchEntry
from desktop.watchlist.columns import PENDING, REJECTED, SUBSCRIBED, WAITING

LISTED_AT_MOST = 5  # items of a list named in the one-line summary; the details list more
DETAILS_AT_MOST = 50
SEVERITY_ORDER = ("ok", "warning", "error")
#: What the backend answered, as the summary words it, in the order it says it.
ANSWERS = ((SUBSCRIBED, "subscribed"), (WAITING, "waiting for room"), (REJECTED, "rejected"))


@dataclass(eq=False)
class ImportSummary:
    """The outcome of one import, from one source (a file name, "pasted text", ...); each
    summary is one import, whatever it holds (compared by identity)."""

    source: str
    added: list[WatchEntry] = field(default_factory=list)
    mode_changed: list[WatchEntry] = field(default_factory=list)
    duplicates: int = 0
    unknown: list[WatchEntry] = field(default_factory=list)
    not_understood: list[str] = field(default_factory=list)
    error: str | None = None
    master_checked: bool = True
    #: What the backend answered for the rows added or changed, by status
    #: (:data:`~desktop.watchlist.columns.PENDING` for not yet); see :meth:`count_answers`.
    answers: Counter[str] = field(default_factory=Counter)

    @property
    def changed(self) -> list[WatchEntry]:
        """The entries whose rows the backend is asked for: added, or in a new mode."""
        return self.added + self.mode_changed

    @property
    def settled(self) -> bool:
        """The backend has answered for every row added or changed (that is still watched)."""
        return not self.answers[PENDING]

    def count_answers(self, statuses: Iterable[str]) -> None:
        """Count the statuses of the rows added or changed, as they are now."""
        self.answers = Counter(statuses)

    @property
    def severity(self) -> str:
        """``error`` when nothing usable was found, ``warning`` when something was refused (by
        the import or the backend) or nothing new was added, else ``ok``."""
        if self.error or not (self.changed or self.duplicates):
            return "error"
        refused = self.answers[WAITING] or self.answers[REJECTED]
        if self.unknown or self.not_understood or not self.changed or refused:
            return "warning"
        return "ok"

    def text(self) -> str:
        """One paragraph saying what happened."""
        if self.error:
            return f"{self.error}. The watchlist is unchanged."
        found = self.changed or self.duplicates or self.unknown
        parts = []
        if self.added or not self.mode_changed:
            parts.append(f"added {len(self.added):,}" if found else "no symbols found")
        if self.mode_changed:
            moved = [f"{entry.label} to {MODE_NAMES[entry.mode]}" for entry in self.mode_changed]
            parts.append(f"mode changed {len(moved):,} ({listed(moved, LISTED_AT_MOST)})")
        parts += [
            f"{words} {self.answers[status]:,}" for status, words in ANSWERS if self.answers[status]
        ]
        if self.answers[PENDING]:
            parts.append(f"awaiting the backend {self.answers[PENDING]:,}")
        if self.duplicates:
            parts.append(f"duplicates skipped {self.duplicates:,}")
        if self.unknown:
            names = listed([entry.label for entry in self.unknown], LISTED_AT_MOST)
            parts.append(f"unknown symbols {len(self.unknown):,} ({names})")
        if self.not_understood:
            lines = listed(self.not_understood, LISTED_AT_MOST)
            parts.append(f"lines not understood {len(self.not_understood):,} ({lines})")
        text = f"{self.source}: " + "; ".join(parts) + "."
        if not self.changed:
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


def listed(items: Sequence[str], at_most: int = LISTED_AT_MOST) -> str:
    """The first ``at_most`` items, and how many more there are."""
    shown = ", ".join(items[:at_most])
    return shown + (f" and {len(items) - at_most:,} more" if len(items) > at_most else "")


def plan_import(
    parsed: ParseResult,
    existing: Mapping[tuple[str, str], int],
    master: InstrumentMaster | None,
    source: str,
) -> ImportSummary:
    """What to do with ``parsed`` to a watchlist holding ``existing`` keys in their modes.

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
        if entry.key in seen or existing.get(entry.key) == entry.mode:
            summary.duplicates += 1
        elif entry.key in existing:
            summary.mode_changed.append(entry)
        elif master is not None and entry.key not in master:
            summary.unknown.append(entry)
        else:
            summary.added.append(entry)
        seen.add(entry.key)
    return summary
