"""Connection gauges: one per pooled connection, showing the numbers of SYS.POOL."""

from __future__ import annotations

import pytest
from bus_messages import connection_stats, pool_stats
from msgspec.structs import replace
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPixmap

from desktop.colours import FULL_COLOUR, STATE_COLOURS
from desktop.gauges.panel import AWAITING_FIGURES, ConnectionGauges
from desktop.gauges.readings import percent_text, tick_age_text

SECOND = connection_stats(
    2, symbols=732, state="reconnecting", last_tick_age_ms=4200, peak_symbols=900
)
FIRST = connection_stats(
    1,
    symbols=1000,
    ticks_per_second=812.5,
    last_tick_age_ms=3,
    peak_symbols=1000,
    ticks_shed=1250,
)
STATS = pool_stats(SECOND, FIRST, peak_symbols=2800, peak_connections=3, utilisation_percent=57.73)


@pytest.fixture
def gauges(qtbot) -> ConnectionGauges:
    widget = ConnectionGauges()
    qtbot.addWidget(widget)
    widget.resize(1000, 280)
    widget.show()
    return widget


def test_no_connection_gauge_before_the_pool_opens_one(gauges):
    assert gauges.gauges == {}


def test_one_gauge_per_connection_with_its_numbers(gauges):
    gauges.update_stats(STATS)

    assert sorted(gauges.gauges) == [1, 2]
    first, second = gauges.gauges[1].reading, gauges.gauges[2].reading
    assert first.headline == "1,000 / 1,000"
    assert first.badge == "connected, full"
    assert first.colour == FULL_COLOUR
    assert first.fraction == 1.0
    assert "812.5 ticks/s" in first.details
    assert "last tick 3 ms ago" in first.details
    assert "1,250 stale ticks shed" in first.details
    assert not any("shed" in detail for detail in gauges.gauges[2].reading.details)
    assert second.headline == "732 / 1,000"
    assert second.badge == "reconnecting"
    assert second.colour == STATE_COLOURS["reconnecting"]
    assert second.fraction == pytest.approx(0.732)
    assert "last tick 4.2 s ago" in second.details


def test_total_gauge_shows_pool_total_capacity_and_peak(gauges):
    gauges.update_stats(STATS)

    total = gauges.total.reading
    assert total.headline == "1,732 / 3,000"
    assert total.badge == "57.7 % used"
    assert "peak 2,800" in total.details
    assert "2 of 3 connections (peak 3)" in total.details
    assert "simulator/FEEDPOOL" in total.title


def test_gauges_are_laid_out_in_connection_order(qtbot, gauges):
    gauges.update_stats(STATS)
    third = replace(SECOND, index=3, state="connecting")
    gauges.update_stats(replace(STATS, connections=[SECOND, FIRST, third]))

    qtbot.waitUntil(lambda: all(gauge.isVisible() for gauge in gauges.gauges.values()))
    gauges.layout().activate()
    lefts = [gauges.gauges[index].geometry().left() for index in (1, 2, 3)]
    assert lefts == sorted(lefts)
    assert gauges.total.geometry().left() < lefts[0]


def test_a_connection_the_pool_no_longer_lists_loses_its_gauge(gauges):
    gauges.update_stats(STATS)
    gauges.update_stats(replace(STATS, connections=[FIRST]))

    assert sorted(gauges.gauges) == [1]


def test_health_change_recolours_the_gauge_at_once(gauges):
    gauges.update_stats(STATS)
    gauges.set_connection_state(1, "down")

    assert gauges.gauges[1].reading.badge == "down"
    assert gauges.gauges[1].reading.colour == STATE_COLOURS["down"]
    assert gauges.gauges[1].reading.value == "1,000"


def test_gauges_paint_vectors_at_a_high_device_pixel_ratio(qtbot, gauges):
    gauges.update_stats(STATS)
    qtbot.waitUntil(lambda: all(gauge.isVisible() for gauge in gauges.gauges.values()))
    for gauge in [gauges.total, *gauges.gauges.values()]:
        pixmap = QPixmap(gauge.size() * 3)
        pixmap.setDevicePixelRatio(3)
        pixmap.fill(Qt.GlobalColor.white)
        gauge.render(pixmap)
        image = pixmap.toImage()
        assert image.width() == gauge.width() * 3
        accent = QColor(gauge.reading.colour).rgb()
        # The arc is painted in the reading's colour at full resolution.
        assert any(
            image.pixel(x, y) == accent
            for x in range(0, image.width(), 2)
            for y in range(0, image.height() // 2, 2)
        )


@pytest.mark.parametrize(
    ("age", "text"),
    [(None, "no ticks yet"), (250, "last tick 250 ms ago"), (61_000, "last tick 1 min ago")],
)
def test_tick_age_text(age, text):
    assert tick_age_text(age) == text


def test_an_expired_session_shows_red_with_the_brokers_reason_and_a_log_in_button(gauges, qtbot):
    gauges.update_stats(STATS)
    assert not gauges.log_in_button.isVisibleTo(gauges)
    expired = replace(SECOND, state="session_expired", reason="Invalid totp (AB1050)")
    gauges.update_stats(replace(STATS, connections=[expired, replace(FIRST, feeds_healed=2)]))

    reading = gauges.gauges[2].reading
    assert reading.badge == "session expired: log in again"
    assert reading.colour == STATE_COLOURS["session_expired"]
    assert reading.details[0] == "Invalid totp (AB1050)"
    assert "2 silent feeds healed" in gauges.gauges[1].reading.details
    assert gauges.log_in_button.isVisibleTo(gauges)
    with qtbot.waitSignal(gauges.log_in_requested, timeout=1000):
        qtbot.mouseClick(gauges.log_in_button, Qt.MouseButton.LeftButton)

    gauges.update_stats(STATS)
    assert not gauges.log_in_button.isVisibleTo(gauges)


def test_a_session_the_broker_refused_at_start_shows_on_the_pool_gauge(gauges):
    gauges.update_stats(replace(STATS, session_problem="Angel One refused to log in: Invalid totp"))
    assert gauges.total.reading.badge == "session expired: log in again"
    assert gauges.total.reading.details[0].startswith("Angel One refused to log in")
    assert gauges.log_in_button.isVisibleTo(gauges)


def test_a_full_connection_has_a_colour_of_its_own_and_one_with_room_stays_green(gauges):
    roomy = connection_stats(3, symbols=999, peak_symbols=999)
    gauges.update_stats(replace(STATS, connections=[FIRST, roomy]))
    full, third = gauges.gauges[1].reading, gauges.gauges[3].reading
    assert (full.badge, full.colour) == ("connected, full", FULL_COLOUR)
    assert FULL_COLOUR not in STATE_COLOURS.values()
    assert (third.badge, third.colour) == ("connected", STATE_COLOURS["connected"])


@pytest.mark.parametrize(
    ("held", "capacity", "text"),
    [
        (2999, 3000, "99.9 %"),
        (3000, 3000, "100.0 %"),
        (1732, 3000, "57.7 %"),
        (1, 3000, "< 0.1 %"),
        (0, 3000, "0.0 %"),
        (0, 0, "0.0 %"),
    ],
)
def test_a_percentage_reads_100_only_when_full(held, capacity, text):
    assert percent_text(held, capacity) == text


def test_the_pool_gauge_of_2999_of_3000_is_below_100_and_one_connection_is_singular(gauges):
    almost = connection_stats(1, symbols=2999, capacity=3000)
    pool = pool_stats(almost, max_connections=1, capacity=3000, utilisation_percent=99.97)
    gauges.update_stats(pool)
    assert gauges.total.reading.badge == "99.9 % used"
    assert "1 of 1 connection (peak 1)" in gauges.total.reading.details


def test_the_gauges_say_the_backend_is_not_serving_until_its_next_figures(gauges):
    gauges.set_backend_state("ready")
    gauges.update_stats(STATS)
    gauges.set_backend_state("restarting", "it crashed or was killed by signal 9")

    readings = [gauges.total.reading, *(gauge.reading for gauge in gauges.gauges.values())]
    assert {reading.badge for reading in readings} == {"backend restarting"}
    assert {reading.colour for reading in readings} == {STATE_COLOURS["restarting"]}
    assert all(r.details[0] == "it crashed or was killed by signal 9" for r in readings)
    assert gauges.gauges[1].reading.value == "1,000"  # the last numbers, said to be so
    assert all("numbers from before" in reading.details for reading in readings)

    gauges.set_backend_state("ready")
    assert gauges.total.reading.badge == "backend ready"
    assert gauges.total.reading.details[0] == AWAITING_FIGURES
    gauges.update_stats(STATS)
    assert gauges.total.reading.badge == "57.7 % used"
    assert gauges.gauges[2].reading.badge == "reconnecting"
