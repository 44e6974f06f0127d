"""Changed cells as rectangles: as few as cover exactly those cells, or one that spans them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

Rectangle = tuple[int, int, int, int]  # top row, bottom row, left column, right column


def column_runs(columns: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """Columns as runs of neighbours: {4, 5, 7} -> ((4, 5), (7, 7))."""
    runs: list[tuple[int, int]] = []
    for column in sorted(set(columns)):
        if runs and column == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], column)
        else:
            runs.append((column, column))
    return tuple(runs)


def coalesce_cells(changes: Mapping[int, Iterable[int]]) -> list[Rectangle]:
    """Rectangles covering exactly the changed cells.

    ``changes`` maps a row to its changed columns. Each row's columns become runs of neighbours;
    a block of neighbouring rows with the same runs shares one rectangle per run.
    """
    blocks: list[tuple[int, int, tuple[tuple[int, int], ...]]] = []  # top, bottom, runs
    for row in sorted(changes):
        runs = column_runs(changes[row])
        if not runs:
            continue
        if blocks and blocks[-1][1] == row - 1 and blocks[-1][2] == runs:
            blocks[-1] = (blocks[-1][0], row, runs)
        else:
            blocks.append((row, row, runs))
    return [(top, bottom, left, right) for top, bottom, runs in blocks for left, right in runs]


def spanning_rectangle(changes: Mapping[int, Iterable[int]]) -> Rectangle | None:
    """The smallest rectangle holding every changed cell; ``None`` if no cell changed."""
    rows = [row for row, columns in changes.items() if columns]
    if not rows:
        return None
    columns = set().union(*(changes[row] for row in rows))
    return min(rows), max(rows), min(columns), max(columns)
