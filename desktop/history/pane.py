"""The History dock: the last 15 minutes of the pool, plotted with pyqtgraph.

Three plots share the time axis: ticks per second (a line per connection, and the total), the
feed's worst lag each second, and the ticks the pool shed each second. A dashed line marks each
event (a reconnect, an expired session), labelled.

Nothing here runs per tick but :meth:`FeedLag.observe`, for each tick the watchlist applies: the
pane keeps the latest ``SYS.POOL`` statistics, samples them once a second and redraws then, and
only while it is visible. A redraw must stay cheap beside a ticking watchlist, so the time axis
moves in steps of :data:`AXIS_STEP_SECONDS` rather than every second, and every axis is kept as a
pixmap until its ticks change: between steps only the lines are painted again.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QGraphicsItem, QVBoxLayout, QWidget

from backend.bus.messages import PoolStats
from desktop.colours import STATE_COLOURS
from desktop.history.feed_lag import FeedLag
from desktop.history.samples import CAPACITY, Event, PoolHistory, Series

SAMPLE_MS = 1000
#: Statistics older than this are not sampled: the backend is not publishing.
STALE_SECONDS = 3.0
TOTAL_COLOUR = "#e5e7eb"
AXIS_STEP_SECONDS = 30


def _plot(layout: pg.GraphicsLayoutWidget, row: int, label: str) -> pg.PlotItem:
    plot = layout.addPlot(row=row, col=0, axisItems={"bottom": pg.DateAxisItem()})
    plot.setLabel("left", label)
    plot.getAxis("left").enableAutoSIPrefix(False)
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setMouseEnabled(x=False, y=False)
    plot.setLimits(yMin=0)  # rates, lags and counts are never negative
    for name in ("left", "bottom"):
        plot.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    return plot


class HistoryPane(QWidget):
    """Fed with :meth:`update_stats` (``SYS.POOL``), :meth:`note_health` (``SYS.HEALTH``) and
    :attr:`feed_lag` (each tick the watchlist applies)."""

    def __init__(
        self,
        parent: QWidget | None = None,
        clock: Callable[[], float] = time.time,
        sample_ms: int = SAMPLE_MS,
    ) -> None:
        super().__init__(parent)
        self._clock = clock
        self.history = PoolHistory()
        self.feed_lag = FeedLag()
        self._stats: PoolStats | None = None
        self._stats_at = 0.0

        self.plots = pg.GraphicsLayoutWidget(self)
        self.rate_plot = _plot(self.plots, 0, "ticks/s")
        self.rate_plot.addLegend(offset=(10, 5), colCount=4)
        self.lag_plot = _plot(self.plots, 1, "lag ms")
        self.shed_plot = _plot(self.plots, 2, "shed/s")
        for plot in (self.lag_plot, self.shed_plot):
            plot.setXLink(self.rate_plot)
        self.total_curve = self.rate_plot.plot(name="total", pen=pg.mkPen(TOTAL_COLOUR))
        self.lag_curve = self.lag_plot.plot(pen=pg.mkPen(STATE_COLOURS["connecting"]))
        self.shed_curve = self.shed_plot.plot(pen=pg.mkPen(STATE_COLOURS["down"]))
        #: The rate line of each connection, by connection index.
        self.curves: dict[int, pg.PlotDataItem] = {}
        self._markers: deque[tuple[Event, pg.InfiniteLine]] = deque()
        #: Where the time axis ends (epoch seconds); it moves a step on when a sample passes it.
        self.axis_end = 0.0

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plots)
        self._timer = QTimer(self)
        self._timer.setInterval(sample_ms)
        self._timer.timeout.connect(self.sample)
        self._timer.start()

    def update_stats(self, pool: PoolStats) -> None:
        """Keep a ``SYS.POOL`` message for the next sample."""
        self._stats = pool
        self._stats_at = self._clock()

    def note_health(self, connection: int, state: str) -> None:
        """Mark the event a connection's new state is, if it is one."""
        event = self.history.note_health(self._clock(), connection, state)
        if event is not None:
            self._mark(event)

    def _mark(self, event: Event) -> None:
        line = pg.InfiniteLine(
            pos=event.time,
            pen=pg.mkPen(STATE_COLOURS["reconnecting"], style=Qt.PenStyle.DashLine),
            label=event.label,
            labelOpts={"position": 0.85, "color": STATE_COLOURS["reconnecting"]},
        )
        self.rate_plot.addItem(line)
        self._markers.append((event, line))

    def sample(self) -> None:
        """Take this second's sample, and redraw if the pane is shown."""
        now = self._clock()
        fresh = self._stats if now - self._stats_at <= STALE_SECONDS else None
        for event in self.history.sample(now, fresh, self.feed_lag.take()):
            self._mark(event)
        if self.isVisible():
            self.redraw()

    def redraw(self) -> None:
        history = self.history
        for index, series in history.rates.items():
            curve = self.curves.get(index)
            if curve is None:
                pen = pg.mkPen(pg.intColor(index - 1, hues=6))
                curve = self.curves[index] = self.rate_plot.plot(name=f"#{index}", pen=pen)
            _draw(curve, series)
        _draw(self.total_curve, history.total)
        _draw(self.lag_curve, history.lag)
        _draw(self.shed_curve, history.shed)
        now = self._clock()
        if now > self.axis_end:
            self.axis_end = now + AXIS_STEP_SECONDS
            self.rate_plot.setXRange(self.axis_end - AXIS_STEP_SECONDS - CAPACITY, self.axis_end, 0)
        oldest = now - CAPACITY
        while self._markers and self._markers[0][0].time < oldest:
            self.rate_plot.removeItem(self._markers.popleft()[1])

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.redraw()


def _draw(curve: pg.PlotDataItem, series: Series) -> None:
    curve.setData(list(series.times), list(series.values))
