"""The simulator's tick calendar: slots a batch window wide, taken whole once begun."""

from __future__ import annotations

import pytest

from backend.simulator.schedule import TickSchedule

WIDTH = 0.005


def test_items_are_taken_once_their_slot_has_begun_earliest_first():
    schedule: TickSchedule[str] = TickSchedule(WIDTH)
    schedule.add("later", 10.0131)
    schedule.add("sooner", 10.0021)
    schedule.add("with sooner", 10.0049)
    assert schedule.next_start() == pytest.approx(10.0)
    assert schedule.take(9.9999) == []
    assert schedule.take(10.0) == ["sooner", "with sooner"]  # up to a width early
    assert schedule.next_start() == pytest.approx(10.01)
    assert schedule.take(10.02) == ["later"]
    assert schedule.next_start() is None
    assert schedule.take(11.0) == []


def test_a_late_taker_gets_every_slot_begun_in_order():
    schedule: TickSchedule[int] = TickSchedule(WIDTH)
    for n, due in enumerate((0.031, 0.001, 0.017, 0.009)):
        schedule.add(n, due)
    assert schedule.take(1.0) == [1, 3, 2, 0]


def test_slots_are_counted_on_the_clock_so_schedules_share_a_grid():
    first: TickSchedule[str] = TickSchedule(WIDTH)
    second: TickSchedule[str] = TickSchedule(WIDTH)
    first.add("a", 7.0012)
    second.add("b", 7.0038)
    assert first.next_start() == second.next_start() == 7.0
