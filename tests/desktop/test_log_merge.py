"""A backend record comes on stderr and on the bus; the log pane gets it once."""

from __future__ import annotations

from desktop.link.log_merge import LogMerge


def test_records_from_before_the_bus_come_from_stderr_and_are_not_shown_again():
    merge = LogMerge()
    assert [merge.from_stderr(n) for n in (1, 2, 3)] == [True, True, True]
    # The subscription took effect at record 2: the bus repeats 2 and 3, then goes on.
    assert [merge.from_bus(n) for n in (2, 3, 4, 5)] == [False, False, True, True]
    assert [merge.from_stderr(n) for n in (4, 5, 6)] == [False, False, False]
    assert merge.from_bus(6)


def test_stderr_lagging_behind_the_bus_still_shows_what_the_bus_never_had():
    merge = LogMerge()
    assert merge.from_bus(10)
    assert merge.from_stderr(9)  # before the bus's first record
    assert not merge.from_stderr(10)


def test_after_the_bus_stops_stderr_shows_the_records_it_did_not_deliver():
    merge = LogMerge()
    merge.from_bus(1)
    merge.from_bus(2)
    merge.bus_stopped()
    assert not merge.from_stderr(2)
    assert merge.from_stderr(3)
    assert merge.from_stderr(None)  # a traceback line


def test_text_that_is_no_record_is_shown_only_while_the_bus_delivers_none():
    merge = LogMerge()
    assert merge.from_stderr(None)
    merge.from_bus(1)
    assert not merge.from_stderr(None)


def test_a_new_run_numbers_from_one_again():
    merge = LogMerge()
    merge.from_stderr(1)
    merge.from_bus(1)
    merge.new_run()
    assert merge.from_stderr(1)
    assert merge.from_bus(2)
