"""The History dock: one sample a second, bounded, with event markers."""

from __future__ import annotations

import pyqtgraph as pg
import pytest
from bus_messages import connection_stats, pool_stats
from msgspec.structs import replace
from PySide6.QtGui import QColor, QPalette

from backend.bus.messages import PoolStats
from desktop.history.feed_lag import FeedLag
from desktop.history.pane import (
    AXIS_STEP_SECONDS,
    LAG_NAME,
    LAG_NAME_WHOLE_SECONDS,
    HistoryPane,
    axis_step,
)
from desktop.history.samples import PoolHistory


def pool(shed: int, rates: tuple[float, ...] = (100.0, 50.0)) -> PoolStats:
    return pool_stats(
        *(
            connection_stats(n, ticks_per_second=rate, ticks_shed=shed if n == 1 else 0)
            for n, rate in enumerate(rates, start=1)
        )
    )


def test_samples_are_bounded_and_shed_ticks_counted_per_second():
    history = PoolHistory(capacity=3)
    for second, shed in enumerate((10, 15, 15, 40, 2)):  # 2: the backend restarted
        history.sample(float(second), pool(shed), 5.0)
    assert list(history.shed.values) == [0, 25, 0]
    assert list(history.total.values) == [150.0, 150.0, 150.0]
    assert list(history.rates[2].times) == [2.0, 3.0, 4.0]
    assert len(history.lag) == 3


def test_each_healed_silent_feed_is_an_event():
    history = PoolHistory()
    first, second = pool(0).connections
    assert history.sample(1.0, pool(0), None) == []
    healed = pool_stats(first, replace(second, feeds_healed=1))
    [event] = history.sample(2.0, healed, None)
    assert (event.time, event.label) == (2.0, "#2 silent feed healed")
    assert history.sample(3.0, healed, None) == []
    assert list(history.events) == [event]


def test_the_feed_lag_is_the_worst_of_the_second():
    lag = FeedLag()
    assert lag.take() is None
    lag.observe({"timestamp": 99_990}, received=100.0)
    lag.observe({"timestamp": 99_700}, received=100.0)
    lag.observe({"timestamp": 99_950}, received=100.2)
    assert lag.take() == 300.0
    assert lag.take() is None


def test_a_reconnect_is_marked_and_the_lines_drawn(qtbot):
    now = [1000.0]
    pane = HistoryPane(clock=lambda: now[0], sample_ms=60_000)
    qtbot.addWidget(pane)
    pane.show()
    pane.update_stats(pool(0))
    pane.note_health(2, "reconnecting")
    pane.note_health(2, "connected")  # not an event
    pane.sample()
    markers = [item for item in pane.rate_plot.items if isinstance(item, pg.InfiniteLine)]
    assert [marker.label.format for marker in markers] == ["#2 reconnect"]
    assert sorted(pane.curves) == [1, 2]
    now[0] += 10  # the statistics are stale now: no rate sample
    pane.sample()
    assert len(pane.curves[1].getData()[0]) == 1


def test_the_time_axis_spans_what_the_history_holds_and_moves_in_steps(qtbot):
    now = [1000.0]
    pane = HistoryPane(clock=lambda: now[0], sample_ms=60_000)
    qtbot.addWidget(pane)
    pane.show()
    assert pane.waiting_label.isVisible() and not pane.plots.isVisible()  # no empty axes
    for _ in range(60):  # a minute of samples: the axis spans that minute, not 15
        pane.update_stats(pool(0))
        pane.sample()
        now[0] += 1
    assert pane.plots.isVisible() and not pane.waiting_label.isVisible()
    start, end = pane.rate_plot.viewRange()[0]
    assert start == pytest.approx(1000.0, abs=1) and 1059 <= end <= 1059 + axis_step(60)
    first = (start, end)
    now[0] = end - 0.5  # still inside the step: the axis stays put
    pane.sample()
    assert tuple(pane.rate_plot.viewRange()[0]) == pytest.approx(first)
    now[0] = end + 1  # past its end: the axis moves on, the lag and shed plots with it
    pane.sample()
    moved = pane.rate_plot.viewRange()[0]
    assert moved[0] == pytest.approx(1000.0, abs=1) and moved[1] >= now[0]
    assert pane.shed_plot.viewRange()[0] == moved


def test_a_full_history_spans_its_capacity(qtbot):
    now = [1000.0]
    pane = HistoryPane(clock=lambda: now[0], sample_ms=60_000)
    pane.history = PoolHistory(capacity=100)
    qtbot.addWidget(pane)
    pane.show()
    for _ in range(250):
        pane.update_stats(pool(0))
        pane.sample()
        now[0] += 1
    start, end = pane.rate_plot.viewRange()[0]
    assert start == pytest.approx(now[0] - 101, abs=AXIS_STEP_SECONDS)
    assert end - start <= 100 + AXIS_STEP_SECONDS + 1


def test_with_one_connection_the_total_line_shows_round_it(qtbot):
    pane = HistoryPane(sample_ms=60_000)
    qtbot.addWidget(pane)
    pane.show()
    pane.update_stats(pool(0, rates=(100.0,)))
    pane.sample()
    total, first = pane.total_curve, pane.curves[1]
    assert list(total.getData()[1]) == list(first.getData()[1])  # the same values...
    assert total.zValue() < first.zValue()  # ...drawn under the connection's line
    assert total.opts["pen"].widthF() > first.opts["pen"].widthF()  # ...and wider than it
    labels = [label.text for _, label in pane.rate_plot.legend.items]
    assert labels == ["total", "#1"]


def test_plots_take_the_palette_of_the_tables_and_follow_its_changes(qtbot):
    pane = HistoryPane(sample_ms=60_000)
    qtbot.addWidget(pane)
    base = pane.palette().color(QPalette.ColorRole.Base)
    assert pane.plots.backgroundBrush().color() == base
    dark = QPalette(pane.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor("#1e1e1e"))
    dark.setColor(QPalette.ColorRole.Text, QColor("#f0f0f0"))
    pane.setPalette(dark)
    assert pane.plots.backgroundBrush().color() == QColor("#1e1e1e")
    assert pane.rate_plot.getAxis("left").textPen().color() == QColor("#f0f0f0")
    _, total_label = pane.rate_plot.legend.items[0]
    assert "#f0f0f0" in total_label.item.toHtml()  # the legend drawn again in the new colour


def test_lag_from_whole_second_stamps_is_the_least_they_allow_and_said_so(qtbot):
    lag = FeedLag()
    # Kite's full packets: the exchange saw these ticks within the second stamped.
    lag.observe({"timestamp": 100_000}, received=100.990)
    lag.observe({"timestamp": 100_000}, received=101.004)
    assert lag.take() == pytest.approx(4.0)  # not 1,004 ms: no phantom second
    assert lag.whole_seconds
    lag.observe({"timestamp": 100_250}, received=100.300)  # stamped to the millisecond
    lag.observe({"timestamp": 100_000}, received=100.310)
    assert lag.take() == pytest.approx(50.0)
    assert not lag.whole_seconds

    pane = HistoryPane(sample_ms=60_000)
    qtbot.addWidget(pane)
    pane.show()
    pane.feed_lag.observe({"timestamp": 100_000}, received=100.5)
    pane.sample()
    assert pane.lag_plot.legend.items[0][1].text == LAG_NAME_WHOLE_SECONDS
    pane.feed_lag.observe({"timestamp": 100_123}, received=100.5)
    pane.sample()
    assert pane.lag_plot.legend.items[0][1].text == LAG_NAME
