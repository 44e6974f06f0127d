"""The simulated market's table, traded many instruments at a time."""

from __future__ import annotations

import numpy as np

from backend.instruments.master import Instrument
from backend.simulator.market import COLUMN, MAX_QUANTITY, Market

JPYINR = Instrument("9001", "JPYINR", "JPYINR", "CDS", "FUTCUR", 100_000, 0.0025, price=0.57)
IDEA = Instrument("9002", "IDEA", "IDEA", "NFO", "FUTSTK", 74_000, 0.01, price=7.5)
SBIN = Instrument("9003", "SBIN", "SBIN", "NSE", "EQ", 1, 0.05, price=812.35)
INSTRUMENTS = {i.token: i for i in (JPYINR, IDEA, SBIN)}
TRADES = 2_000


def market(seed: int = 1) -> tuple[Market, np.ndarray]:
    traded = Market(INSTRUMENTS, lambda key: "NSE", seed)
    rows = np.array([traded.row(key, 1_000_000) for key in [*INSTRUMENTS, "unknown"]])
    return traded, rows


def figure(traded: Market, rows: np.ndarray, name: str) -> np.ndarray:
    return traded.figures[rows, COLUMN[name]]


def test_trades_keep_every_figure_in_range_even_for_large_lots():
    traded, rows = market()
    lots = figure(traded, rows, "lot")
    for trade in range(TRADES):
        before = traded.figures[rows].copy()
        traded.trade(rows, 1_000_000 + trade)
        ltp, high, low = (figure(traded, rows, name) for name in ("ltp", "high", "low"))
        assert (ltp % figure(traded, rows, "tick") == 0).all()
        assert (figure(traded, rows, "lower_circuit") <= ltp).all()
        assert (ltp <= figure(traded, rows, "upper_circuit")).all()
        assert (low <= ltp).all() and (ltp <= high).all()
        assert (high >= before[:, COLUMN["high"]]).all() and (low <= before[:, COLUMN["low"]]).all()
        average = figure(traded, rows, "average")
        assert (low <= average).all() and (average <= high).all()
        for name in ("volume", "total_buy", "total_sell", "last_quantity"):
            values = figure(traded, rows, name)
            assert (lots <= values).all() and (values <= MAX_QUANTITY).all(), name
        assert (figure(traded, rows, "sequence") == before[:, COLUMN["sequence"]] + 1).all()
    # Kite's quantities are uint32: a large lot's volume reaches the top and stays there.
    for _ in range(4 * TRADES):
        traded.trade(rows, 1_000_000 + TRADES - 1)
    assert figure(traded, rows, "volume")[0] == MAX_QUANTITY
    assert (traded.figures[rows] >= 0).all()  # nothing overflowed, the day's turnover included
    for name in ("volume", "total_buy", "total_sell", "open_interest"):
        assert (figure(traded, rows, name) <= MAX_QUANTITY).all(), name
    open_interest = figure(traded, rows, "open_interest")
    assert (open_interest[:2] >= lots[:2]).all() and (open_interest[2:] == 0).all()
    assert (figure(traded, rows, "last_trade_time") == (1_000_000 + TRADES - 1) // 1000).all()


def test_the_same_seed_repeats_each_instruments_trades_whatever_else_trades():
    alone, rows = market()
    together, _ = market()
    for _ in range(50):
        alone.trade(rows[:1], 0)
        together.trade(rows, 0)
    assert (alone.figures[rows[0]] == together.figures[rows[0]]).all()
    other, _ = market(seed=2)
    for _ in range(50):
        other.trade(rows, 0)
    assert (other.figures[rows, COLUMN["ltp"]] != together.figures[rows, COLUMN["ltp"]]).any()


def test_the_book_brackets_the_last_price_and_is_the_same_for_the_same_trade():
    traded, rows = market()
    traded.trade(rows, 0)
    quantities, prices, orders = traded.book(rows)
    again = traded.book(rows)
    assert all((a == b).all() for a, b in zip((quantities, prices, orders), again, strict=True))
    ltp, tick = figure(traded, rows, "ltp")[:, None], figure(traded, rows, "tick")[:, None]
    bids, asks = prices[:, :5], prices[:, 5:]
    assert (bids[:, :1] == ltp - tick).all() and (ltp <= asks[:, :1]).all()
    assert (np.diff(bids) < 0).all() and (np.diff(asks) > 0).all()
    assert (prices > 0).all() and (prices % tick == 0).all()
    assert (quantities % figure(traded, rows, "lot")[:, None] == 0).all() and (orders >= 1).all()
    traded.trade(rows, 0)
    assert any((a != b).any() for a, b in zip(traded.book(rows), again, strict=True))
