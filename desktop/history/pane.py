"""The History dock: the pool's last minutes (up to 15), plotted with pyqtgraph.

Three plots share the time axis: ticks per second (a line per connection, or per broker account
when there are several, and the total, drawn wider under them so that one line does not hide
it), the feed's worst lag each second, and the ticks the pool shed each second. A dashed line
marks each event (a reconnect, an expired session; symbols failed over to another account or
returned to their own, in a colour of their own), labelled. Until the first sample the pane says
so instead of showing empty axes. The time axis spans what the history holds, from its oldest
sample, so the first minutes fill the plots rather than a sliver of 15 minutes. When the broker
stamps ticks in whole seconds, the lag's legend says that what is plotted is the least lag the
stamps allow (see :mod:`desktop.history.feed_lag`). The plots take the window's palette
(:mod:`desktop.plot_style`).

Nothing here runs per tick but :meth:`FeedLag.observe`, for each tick the watchlist applies: the
pane keeps the latest ``SYS.POOL`` statistics, samples them once a second and redraws then, and
only while it is visible. A redraw must stay cheap beside a ticking watchlist, so the time axis
moves in steps (:func:`axis_step`: a tenth of the span, from :data:`MIN_AXIS_STEP_SECONDS` to
:data:`AXIS_STEP_SECONDS`) rather than every second, and every axis is kept as a pixmap until its
ticks change: between steps only the lines are painted again.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QShowEvent
from PySide6.QtWidgets import QGraphicsItem, QLabel, QVBoxLayout, QWidget

from backend.bus.messages import PoolStats, SymbolsMoved
from desktop.colours import STATE_COLOURS
from desktop.history.feed_lag import FeedLag
from desktop.history.samples import Event, PoolHistory, Series, SeriesKey
from desktop.plot_style import PlotPalette

SAMPLE_MS = 1000
#: Statistics older than this are not sampled: the backend is not publishing.
STALE_SECONDS = 3.0
AXIS_STEP_SECONDS = 30
MIN_AXIS_STEP_SECONDS = 5
TOTAL_WIDTH, CONNECTION_WIDTH = 5, 1.5
NO_HISTORY = "The pool's last minutes are plotted here from the backend's first figures."
LAG_NAME = "worst lag of each second"
LAG_NAME_WHOLE_SECONDS = "worst lag, at least: the broker stamps whole seconds"


def axis_step(span: float) -> float:
    """How far past now the time axis ends, when the history spans ``span`` seconds."""
    return min(max(span / 10, MIN_AXIS_STEP_SECONDS), AXIS_STEP_SECONDS)


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
    """Fed with :meth:`update_stats` (``SYS.POOL``), :meth:`note_health` (``SYS.HEALTH``),
    :meth:`note_moves` (``SYS.MOVES``) and :attr:`feed_lag` (each tick the watchlist applies)."""

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
        self.lag_plot.addLegend(offset=(10, 5))
        self.shed_plot = _plot(self.plots, 2, "shed/s")
        for plot in (self.lag_plot, self.shed_plot):
            plot.setXLink(self.rate_plot)
        for plot in (self.rate_plot, self.lag_plot):
            plot.getAxis("bottom").setStyle(showValues=False)  # the times once, at the bottom
        self.total_curve = self.rate_plot.plot(name="total")
        self.total_curve.setZValue(-1)  # under the connections' lines, showing round them
        self.lag_curve = self.lag_plot.plot(
            name=LAG_NAME, pen=pg.mkPen(STATE_COLOURS["connecting"], width=CONNECTION_WIDTH)
        )
        self.shed_curve = self.shed_plot.plot(
            pen=pg.mkPen(STATE_COLOURS["down"], width=CONNECTION_WIDTH)
        )
        self.palette_follower = PlotPalette(
            self.plots, (self.rate_plot, self.lag_plot, self.shed_plot), self._draw_total_in
        )
        #: The rate line of each connection by index, or of each account by name.
        self.curves: dict[SeriesKey, pg.PlotDataItem] = {}
        self._markers: deque[tuple[Event, pg.InfiniteLine]] = deque()
        #: Where the time axis ends (epoch seconds); it moves a step on when a sample passes it.
        self.axis_end = 0.0

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plots)
        self.waiting_label = QLabel(NO_HISTORY, self)
        self.waiting_label.setWordWrap(True)
        self.waiting_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.waiting_label)
        self.plots.hide()
        self._timer = QTimer(self)
        self._timer.setInterval(sample_ms)
        self._timer.timeout.connect(self.sample)
        self._timer.start()

    def _draw_total_in(self, text: QColor) -> None:
        colour = QColor(text)
        colour.setAlphaF(0.35)
        self.total_curve.setPen(pg.mkPen(colour, width=TOTAL_WIDTH))

    def update_stats(self, pool: PoolStats) -> None:
        """Keep a ``SYS.POOL`` message for the next sample."""
        self._stats = pool
        self._stats_at = self._clock()

    def note_health(self, connection: int, state: str) -> None:
        """Mark the event a connection's new state is, if it is one."""
        event = self.history.note_health(self._clock(), connection, state)
        if event is not None:
            self._mark(event)

    def note_moves(self, moved: SymbolsMoved) -> None:
        """Mark symbols moved between accounts, if it is a failover or a return."""
        event = self.history.note_moves(self._clock(), moved)
        if event is not None:
            self._mark(event)

    def _mark(self, event: Event) -> None:
        colour = STATE_COLOURS["connecting" if event.move else "reconnecting"]
        line = pg.InfiniteLine(
            pos=event.time,
            pen=pg.mkPen(colour, style=Qt.PenStyle.DashLine),
            label=event.label,
            labelOpts={"position": 0.85 if not event.move else 0.6, "color": colour},
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
        held = history.oldest() is not None
        self.plots.setVisible(held)
        self.waiting_label.setVisible(not held)
        for key, series in history.rates.items():
            curve = self.curves.get(key)
            if curve is None:
                pen = pg.mkPen(pg.intColor(len(self.curves), hues=6), width=CONNECTION_WIDTH)
                name = f"#{key}" if isinstance(key, int) else key
                curve = self.curves[key] = self.rate_plot.plot(name=name, pen=pen)
            _draw(curve, series)
        _draw(self.total_curve, history.total)
        _draw(self.lag_curve, history.lag)
        _draw(self.shed_curve, history.shed)
        self._name_lag()
        now = self._clock()
        if now > self.axis_end:
            oldest = history.oldest()
            start = now if oldest is None else oldest
            self.axis_end = now + axis_step(now - start)
            self.rate_plot.setXRange(start, self.axis_end, 0)
        oldest_event = now - history.capacity
        while self._markers and self._markers[0][0].time < oldest_event:
            self.rate_plot.removeItem(self._markers.popleft()[1])

    def _name_lag(self) -> None:
        """Say in the lag's legend what it measures."""
        name = LAG_NAME_WHOLE_SECONDS if self.feed_lag.whole_seconds else LAG_NAME
        _, label = self.lag_plot.legend.items[0]
        if label.text != name:
            label.setText(name)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.redraw()


def _draw(curve: pg.PlotDataItem, series: Series) -> None:
    curve.setData(list(series.times), list(series.values))
