"""Symbol detail parts: the bounded price trail, the best-five book's order, the sampling."""

from __future__ import annotations

from frames import frame

from backend.instruments.symbol_lists import WatchEntry
from desktop.detail.book import BookTable
from desktop.detail.pane import CHART_MIN_HEIGHT, NOTHING_SELECTED, SAMPLE_PARTS, DetailPane
from desktop.detail.price_trail import PriceTrail
from desktop.watchlist.columns import PENDING, SUBSCRIBED
from desktop.watchlist.model import WatchlistModel


def test_a_full_trail_keeps_every_other_point_and_samples_half_as_often():
    trail = PriceTrail(capacity=4)
    for second in range(5):
        trail.add(float(second), 100.0 + second)
    assert list(trail.times) == [0.0, 2.0, 4.0]
    assert trail.step == 2.0
    trail.add(5.0, 1.0)  # within the step: skipped
    trail.add(6.0, 106.0)
    assert list(trail.prices) == [100.0, 102.0, 104.0, 106.0]


def test_the_book_lists_asks_from_the_highest_down_above_the_bids(qtbot):
    book = BookTable()
    qtbot.addWidget(book)
    depth = {
        "buy": [{"price": 99.0 - n, "quantity": 10, "orders": 1} for n in range(5)],
        "sell": [{"price": 100.0 + n, "quantity": 20, "orders": 2} for n in range(5)],
    }
    book.show_depth(depth)
    assert book.sides() == ["Ask"] * 5 + ["Bid"] * 5
    assert book.prices() == [f"{p:.2f}" for p in (104, 103, 102, 101, 100, 99, 98, 97, 96, 95)]
    book.show_depth(None)
    assert book.prices() == [""] * 10


def test_each_round_of_samplings_reads_every_row_once(qtbot):
    model = WatchlistModel(flush_interval_ms=10_000)
    keys = [(f"SYM{n}", "NSE") for n in range(25)]
    model.add_entries([WatchEntry(*key) for key in keys])
    for n, (symbol, _) in enumerate(keys):
        model.push_frame(frame(symbol, 10.0 + n))
    pane = DetailPane(model, clock=lambda: 100.0)
    qtbot.addWidget(pane)
    for _ in range(SAMPLE_PARTS - 1):
        pane.sample()
    assert pane.trails.trail(keys[SAMPLE_PARTS - 1]) is None  # its part is sampled last
    pane.sample()
    assert [list(pane.trails.trail(key).prices) for key in keys] == [[10.0 + n] for n in range(25)]


def test_with_no_row_selected_the_pane_says_so_and_shows_no_empty_chart(qtbot):
    model = WatchlistModel(flush_interval_ms=10_000)
    model.add_entries([WatchEntry("SBIN", "NSE", 3)])
    model.push_frame(frame("SBIN", 801.0))
    pane = DetailPane(model, clock=lambda: 100.0)
    qtbot.addWidget(pane)
    pane.resize(320, 700)
    pane.show()
    pane.refresh()
    assert pane.title.text() == NOTHING_SELECTED and pane.title.wordWrap()
    assert not pane.chart.isVisible() and not pane.book.isVisible()

    pane.show_symbol(("SBIN", "NSE"))
    assert pane.chart.isVisible() and pane.book.isVisible()
    # The book shows every level without a scroll bar; the chart keeps its room above it.
    assert pane.book.verticalScrollBar().maximum() == 0
    assert pane.chart.height() >= CHART_MIN_HEIGHT


def test_a_row_not_served_or_stale_is_marked_not_current_and_its_book_greyed(qtbot):
    model = WatchlistModel(flush_interval_ms=10_000)
    model.add_entries([WatchEntry("SBIN", "NSE", 3)])
    model.push_frame(frame("SBIN", 801.0))
    pane = DetailPane(model, clock=lambda: 100.0)
    qtbot.addWidget(pane)
    pane.show()
    pane.show_symbol(("SBIN", "NSE"))
    row = model.row_object(0)
    assert row.status == PENDING and "Not current: pending" in pane.title.text()
    assert not pane.book.isEnabled()

    row.status = SUBSCRIBED
    pane.refresh()
    assert "Not current" not in pane.title.text() and pane.book.isEnabled()

    row.stale = "no tick for 30 s"
    pane.refresh()
    assert "Not current: stale: no tick for 30 s" in pane.title.text()
    assert not pane.book.isEnabled()
