"""Plots in the window's palette: the background of its tables, its text colour for axes, grid
and legends, following the system's light or dark mode as the palette changes.

pyqtgraph draws in its own colours (black, grey) unless told; a :class:`PlotPalette` tells it the
colours of the palette of the view it watches, and again at every palette change, so a plot sits
beside a table in the same light or dark.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QColor, QPalette

#: A legend's background: the plot's, nearly opaque, so lines behind it do not cross its text.
LEGEND_ALPHA = 220
_CHANGES = (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange)


class PlotPalette(QObject):
    """Keeps ``view`` and its ``plots`` in ``view``'s palette; ``on_change`` is told the text
    colour each time, for lines drawn in it."""

    def __init__(
        self,
        view: pg.GraphicsView,
        plots: Sequence[pg.PlotItem],
        on_change: Callable[[QColor], None] | None = None,
    ) -> None:
        super().__init__(view)
        self._view = view
        self._plots = tuple(plots)
        self._on_change = on_change
        view.installEventFilter(self)
        self.apply()

    def colours(self) -> tuple[QColor, QColor]:
        """The background (the palette's base, as behind a table's cells) and the text colour."""
        palette = self._view.palette()
        return palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)

    def apply(self) -> None:
        background, text = self.colours()
        self._view.setBackground(background)
        for plot in self._plots:
            for name in ("left", "bottom"):
                axis = plot.getAxis(name)
                axis.setPen(text)
                axis.setTextPen(text)
            if plot.legend is not None:
                plot.legend.setLabelTextColor(text)
                for _, label in plot.legend.items:
                    label.setText(label.text)  # drawn again in the colour just set
                plot.legend.setBrush(
                    QColor(background.red(), background.green(), background.blue(), LEGEND_ALPHA)
                )
        if self._on_change is not None:
            self._on_change(text)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in _CHANGES:
            self.apply()
        return False
