"""The Symbol detail dock: the selected watchlist row's price chart and, for Depth, its book.

Every watched symbol's price is sampled once a second into a bounded
:class:`~desktop.detail.price_trail.PriceTrails`, so a symbol selected later still shows its
price since the app started; a tenth of the rows every tenth of a second (:data:`SAMPLE_PARTS`),
so reading thousands of rows never holds up the window at once. The selected symbol's chart and
book are redrawn a few times a second while the pane is shown, from the watchlist's rows: no work
per tick. With no row selected the pane says how to fill it, and shows no empty chart; a row
not served (pending, waiting, rejected) or stale is said to be not current, its book greyed.
The chart takes the window's palette (:mod:`desktop.plot_style`) and keeps
:data:`CHART_MIN_HEIGHT` beside a book.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from backend.instruments.symbol_lists import MODE_NAMES
from desktop.colours import STATE_COLOURS
from desktop.detail.book import BookTable
from desktop.detail.price_trail import Key, PriceTrails
from desktop.plot_style import PlotPalette
from desktop.watchlist.columns import SUBSCRIBED
from desktop.watchlist.model import WatchlistModel

DEPTH_MODE = 3
SAMPLE_MS = 1000
#: Each sampling reads every this many-th row, from the next row on; all in :data:`SAMPLE_MS`.
SAMPLE_PARTS = 10
REFRESH_MS = 250
CHART_MIN_HEIGHT = 140
NOTHING_SELECTED = "Select a watchlist row to see its price and, for Depth rows, its book."


class DetailPane(QWidget):
    """Shows the row of ``watchlist`` chosen with :meth:`show_symbol`."""

    def __init__(
        self,
        watchlist: WatchlistModel,
        parent: QWidget | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(parent)
        self.watchlist = watchlist
        self.trails = PriceTrails()
        self._clock = clock
        self._key: Key | None = None
        self._part = 0  # the first row of the next sampling

        self.title = QLabel(NOTHING_SELECTED, self)
        self.title.setWordWrap(True)
        self.title.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.chart = pg.PlotWidget(self, axisItems={"bottom": pg.DateAxisItem()})
        self.chart.setLabel("left", "LTP")
        self.chart.showGrid(x=True, y=True, alpha=0.2)
        self.chart.setMinimumHeight(CHART_MIN_HEIGHT)
        self.chart.hide()
        self.price_curve = self.chart.plot(pen=pg.mkPen(STATE_COLOURS["connecting"], width=2))
        self.palette_follower = PlotPalette(self.chart, (self.chart.getPlotItem(),))
        self.book = BookTable(self)
        self.book.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.chart, 1)
        layout.addWidget(self.book)

        watchlist.symbols_removed.connect(
            lambda entries: self.trails.forget(entry.key for entry in entries)
        )
        self._timer(SAMPLE_MS // SAMPLE_PARTS, self.sample)
        self._timer(REFRESH_MS, self.refresh)

    def _timer(self, interval_ms: int, slot: Callable[[], None]) -> None:
        timer = QTimer(self)
        timer.setInterval(interval_ms)
        timer.timeout.connect(slot)
        timer.start()

    def show_symbol(self, key: Key | None) -> None:
        """Follow the row of ``(symbol, exchange)``, or nothing."""
        self._key = key
        self.refresh()

    def sample(self) -> None:
        """Sample the next part of the rows (every :data:`SAMPLE_PARTS`-th)."""
        rows = range(self._part, self.watchlist.rowCount(), SAMPLE_PARTS)
        self.trails.sample(self._clock(), map(self.watchlist.row_object, rows))
        self._part = (self._part + 1) % SAMPLE_PARTS

    def refresh(self) -> None:
        """Redraw the chosen row's title, chart and book, if the pane is shown."""
        if not self.isVisible():
            return
        position = None if self._key is None else self.watchlist.row_of(self._key)
        if position is None:
            self.title.setText(NOTHING_SELECTED)
            self._clear_chart()
            self.chart.hide()
            self.book.hide()
            return
        self.chart.show()
        row = self.watchlist.row_object(position)
        price = "no tick yet" if row.ltp is None else f"LTP {row.ltp:,.2f}"
        mode = MODE_NAMES.get(row.mode, str(row.mode))
        title = f"{row.exchange}:{row.symbol}  {mode}  {price}"
        # A row not served, or stale, draws what it last had: say so, and grey the book.
        served = row.status == SUBSCRIBED and not row.stale
        self.title.setText(title if served else f"{title}\nNot current: {row.status_text}")
        self.book.setEnabled(served)
        trail = self.trails.trail(row.key)
        if trail is None:
            self._clear_chart()
        else:
            self.price_curve.setData(list(trail.times), list(trail.prices))
        self.book.setVisible(row.mode == DEPTH_MODE)
        if row.mode == DEPTH_MODE:
            self.book.show_depth(row.depth)

    def _clear_chart(self) -> None:
        """Empty the chart, unless it is: setting no data again would still repaint the plot."""
        times, _ = self.price_curve.getData()
        if times is not None and len(times):
            self.price_curve.setData([], [])
