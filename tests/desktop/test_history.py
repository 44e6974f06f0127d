"""The History dock: one sample a second, bounded, with event markers."""

from __future__ import annotations

import pyqtgraph as pg
from bus_messages import connection_stats, pool_stats
from msgspec.structs import replace

from backend.bus.messages import PoolStats
from desktop.history.feed_lag import FeedLag
from desktop.history.pane import AXIS_STEP_SECONDS, HistoryPane
from desktop.history.samples import CAPACITY, PoolHistory


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


def test_the_time_axis_moves_in_steps_and_shows_the_whole_history(qtbot):
    now = [1000.0]
    pane = HistoryPane(clock=lambda: now[0], sample_ms=60_000)
    qtbot.addWidget(pane)
    pane.show()
    pane.sample()
    first = pane.rate_plot.viewRange()[0]
    assert first[0] <= now[0] - CAPACITY and first[1] >= now[0]
    now[0] += AXIS_STEP_SECONDS - 1  # still inside the step: the axis stays put
    pane.sample()
    assert pane.rate_plot.viewRange()[0] == first
    now[0] += 2  # past its end: the axis moves on, the lag and shed plots with it
    pane.sample()
    moved = pane.rate_plot.viewRange()[0]
    assert moved[0] > first[0] and moved[1] >= now[0]
    assert pane.shed_plot.viewRange()[0] == moved
