"""The simulated market: every instrument's trading day, in the units brokers send on the wire.

Each instrument trades around a plausible price: the master's reference price, a premium derived
from the strike for an option the master gives no price, or a price drawn from a hash of the token
for an instrument the master does not know. Every trade moves the last price by a whole number of
ticks and updates the day's statistics the way an exchange would: high and low follow the price,
open and previous close stay fixed, volume accumulates, the average price is the day's
volume-weighted price.

The market is a table: one row per instrument (:data:`FIGURES`), prices as integers in wire units
(paise; 10^-7 rupee for currency derivatives, as both brokers send them). :meth:`Market.trade`
trades many instruments at once with numpy, and a broker dialect packs their rows into packets
the same way, so a tick costs no Python of its own.

A trade's random draws come from a hash of the instrument's seed and its trade number, and the
seed from the market's seed and the token, so a seeded run repeats the same prices per token
whatever else is subscribed and however the ticks interleave in time.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from backend.feed import DEPTH_LEVELS
from backend.instruments.master import Instrument

# Exchanges whose instruments are derivatives, and so have open interest.
DERIVATIVE_EXCHANGES = frozenset({"NFO", "BFO", "MCX", "CDS", "NCX"})
CURRENCY_EXCHANGE = "CDS"

# An instrument the master does not know: a price from 100 to 5000 rupees, tick 0.05.
SYNTHETIC_PRICE_RANGE = (100.0, 5000.0)
SYNTHETIC_TICK_SIZE = 0.05

# An option the master gives no price: a premium from 0.5% to 4% of its strike.
OPTION_PREMIUM_RANGE = (0.005, 0.04)

# Circuit limits around the previous close: futures 10%, everything else 20%.
FUTURES_CIRCUIT_BAND = 0.10
CIRCUIT_BAND = 0.20

# The lowest previous close, in ticks. With the 20% band the walk never goes below 16 ticks, so
# five bid levels (at most 9 ticks under the last price) stay above zero.
MIN_CLOSE_TICKS = 20

# Standard deviation of one trade's price move, as a fraction of the previous close.
VOLATILITY = 0.0003

# Mean lots per trade, cash and derivatives; at most this many lots rest on one book level.
CASH_TRADE_LOTS = 40
DERIVATIVE_TRADE_LOTS = 4
MAX_LEVEL_LOTS = 200
MAX_LEVEL_ORDERS = 30

# Every trade draws its price move and its size from these: a normal and an exponential
# distribution as tables of quantiles, indexed by 12-bit fields of one 64-bit hash.
QUANTILES = 4096
STANDARD_NORMAL = np.array([NormalDist().inv_cdf((i + 0.5) / QUANTILES) for i in range(QUANTILES)])
STANDARD_EXPONENTIAL = -np.log1p(-(np.arange(QUANTILES) + 0.5) / QUANTILES)
# A trade's draws, 12 bits each: move, size, buy and sell interest, open interest.
DRAW_BITS = 12
DRAW_MASK = QUANTILES - 1
# Lots per trade (cash, then derivatives) and the open interest's change in lots, per quantile.
TRADE_LOTS = np.array(
    [
        1 + np.floor(STANDARD_EXPONENTIAL * mean)
        for mean in (CASH_TRADE_LOTS, DERIVATIVE_TRADE_LOTS)
    ],
    dtype=np.int64,
)
OPEN_INTEREST_LOTS = np.rint(STANDARD_NORMAL * 2).astype(np.int64)
# Buy and sell interest move by (draw - centre) / scale trade sizes: up to twice one, either way.
INTEREST_CENTRE = QUANTILES // 2
INTEREST_SCALE = QUANTILES // 4
# The book's draws: one byte each per level and side for its lots, its orders and the gap to the
# next level, and one for whether the best ask is a tick above the last price.
BOOK_WORDS = 4
NEXT_LEVEL_ONE_TICK = 179  # of 256: 70% of levels are one tick apart, the rest two

# Quantities stay within what every broker's wire carries (Kite's are uint32): the day's volume
# stops growing there, and the opening figures start well below it.
MAX_QUANTITY = 2**32 - 1
OPENING_QUANTITY = MAX_QUANTITY // 8


@dataclass(frozen=True, slots=True)
class Listing:
    """What the price model knows about one instrument, prices in rupees."""

    exchange: str
    price: float
    tick_size: float
    lot_size: int
    circuit_band: float

    @property
    def derivative(self) -> bool:
        return self.exchange in DERIVATIVE_EXCHANGES

    @property
    def divisor(self) -> float:
        """Wire units per rupee: paise, 10^7 for currency derivatives."""
        return 1e7 if self.exchange == CURRENCY_EXCHANGE else 100.0


def key_text(key: Hashable) -> str:
    """A broker's key for a token as text: ``1:3045`` for ``(1, "3045")``, ``779521``."""
    return ":".join(map(str, key)) if isinstance(key, tuple) else str(key)


def _fraction(key: Hashable) -> float:
    """A number in [0, 1) fixed by the token, the same in every process."""
    return zlib.crc32(key_text(key).encode()) / 2**32


def listing(instrument: Instrument | None, key: Hashable, exchange: str = "") -> Listing:
    """The listing of a token: from its instrument, or synthetic for a token with none."""
    fraction = _fraction(key)
    low, high = SYNTHETIC_PRICE_RANGE
    synthetic_price = round(low + fraction * (high - low), 2)
    if instrument is None:
        return Listing(exchange, synthetic_price, SYNTHETIC_TICK_SIZE, 1, CIRCUIT_BAND)
    price = instrument.price
    if not price and instrument.strike > 0:
        low, high = OPTION_PREMIUM_RANGE
        price = instrument.strike * (low + fraction * (high - low))
    is_future = instrument.instrument_type.startswith("FUT")
    return Listing(
        instrument.exchange,
        price or synthetic_price,
        instrument.tick_size or SYNTHETIC_TICK_SIZE,
        max(instrument.lot_size, 1),
        FUTURES_CIRCUIT_BAND if is_future else CIRCUIT_BAND,
    )


# One instrument's row of figures: the packets' fields in wire units (``last_trade_time`` in
# epoch seconds, ``sequence`` the trades so far) and what its trades are drawn from. A trade
# updates the pairs side by side (high and the 52-week high, ...) in one step.
FIGURES = (
    "ltp",
    "high",
    "week52_high",
    "low",
    "week52_low",
    "total_buy",
    "total_sell",
    "last_quantity",
    "average",
    "volume",
    "turnover",
    "open_interest",
    "sequence",
    "last_trade_time",
    "open",
    "close",
    "upper_circuit",
    "lower_circuit",
    "tick",
    "lot",
    "derivative",
)
COLUMN = {name: column for column, name in enumerate(FIGURES)}
#: The day's figures after the last price, in the order both brokers' quote packets carry them.
QUOTE_FIGURES = (
    "last_quantity",
    "average",
    "volume",
    "total_buy",
    "total_sell",
    "open",
    "high",
    "low",
    "close",
)
FIRST_ROWS = 1024

_LTP, _TICK, _LOT, _DERIVATIVE = (COLUMN[n] for n in ("ltp", "tick", "lot", "derivative"))
_LOWER, _UPPER = COLUMN["lower_circuit"], COLUMN["upper_circuit"]
_HIGHS = slice(COLUMN["high"], COLUMN["week52_high"] + 1)
_LOWS = slice(COLUMN["low"], COLUMN["week52_low"] + 1)
_INTEREST = slice(COLUMN["total_buy"], COLUMN["total_sell"] + 1)
_INTEREST_SHIFTS = np.array([2 * DRAW_BITS, 3 * DRAW_BITS])
_OI_SHIFT = 4 * DRAW_BITS
_LAST_QUANTITY, _VOLUME, _TURNOVER, _AVERAGE = (
    COLUMN[n] for n in ("last_quantity", "volume", "turnover", "average")
)
_OPEN_INTEREST, _SEQUENCE = COLUMN["open_interest"], COLUMN["sequence"]
_LAST_TRADE_TIME = COLUMN["last_trade_time"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))
_BOOK_SALT = np.uint64(0x5EED_B00C_0000_0001)


def _hash(values: np.ndarray) -> np.ndarray:
    """Well-mixed 64-bit integers from ``values`` (uint64), one each: splitmix64's finaliser."""
    values = values ^ (values >> np.uint64(30))
    values *= _MIX[0]
    values ^= values >> np.uint64(27)
    values *= _MIX[1]
    return values ^ (values >> np.uint64(31))


class Market:
    """Every instrument's row, made on first use and shared by all connections.

    ``instruments`` maps the broker's key for each token to its instrument (with the bundled
    master's reference price); ``exchange_of`` names the exchange of a key it does not hold.
    ``seed`` (any int or str) makes the market repeatable; without one each market differs.
    Rows are numbered in the order their tokens were first used; :attr:`figures` holds them, a
    column per name in :data:`FIGURES` (it is replaced as the market grows: read it afresh, do
    not keep it).
    """

    def __init__(
        self,
        instruments: Mapping[Hashable, Instrument],
        exchange_of: Callable[[Hashable], str],
        seed: int | str | None = None,
    ) -> None:
        self._instruments = instruments
        self._exchange_of = exchange_of
        self._seed = random.SystemRandom().getrandbits(64) if seed is None else seed
        self._rows: dict[Hashable, int] = {}
        self.figures = np.zeros((FIRST_ROWS, len(FIGURES)), np.int64)
        # Per row: a trade's standard deviation in ticks, and the seed of its draws.
        self._sigma = np.zeros(FIRST_ROWS)
        self._draw_seeds = np.zeros(FIRST_ROWS, np.uint64)

    @property
    def size(self) -> int:
        """Rows in use."""
        return len(self._rows)

    def row(self, key: Hashable, now_ms: int) -> int:
        """The row of the token ``key``, its trading day started at ``now_ms`` if it is new."""
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = len(self._rows)
            if row == len(self.figures):
                self.figures = np.concatenate([self.figures, np.zeros_like(self.figures)])
                self._sigma = np.concatenate([self._sigma, np.zeros_like(self._sigma)])
                self._draw_seeds = np.concatenate(
                    [self._draw_seeds, np.zeros_like(self._draw_seeds)]
                )
            instrument = self._instruments.get(key)
            listed = listing(instrument, key, self._exchange_of(key))
            rng = self.random(key_text(key))
            figures, self._sigma[row] = self._opening(listed, rng, now_ms)
            self.figures[row] = [figures[name] for name in FIGURES]
            self._draw_seeds[row] = rng.getrandbits(64)
        return row

    def random(self, purpose: str) -> random.Random:
        """A generator for ``purpose``, seeded from the market's seed."""
        return random.Random(f"{self._seed}:{purpose}")

    @staticmethod
    def _opening(listing: Listing, rng: random.Random, now_ms: int) -> tuple[dict[str, int], float]:
        """A new row's figures (the day so far: an opening gap, a morning's drift and a range
        around both) and its standard deviation in ticks."""
        lot = listing.lot_size
        divisor = listing.divisor
        tick = max(round(listing.tick_size * divisor), 1)
        close = max(round(listing.price * divisor / tick), MIN_CLOSE_TICKS) * tick
        upper = math.floor(close * (1 + listing.circuit_band) / tick) * tick
        lower = math.ceil(close * (1 - listing.circuit_band) / tick) * tick
        sigma = max(close * VOLATILITY / tick, 0.5)

        def clamp(price: int) -> int:
            return min(max(price, lower), upper)

        open_ = clamp(close + round(rng.gauss(0, 10 * sigma)) * tick)
        ltp = clamp(open_ + round(rng.gauss(0, 20 * sigma)) * tick)
        high = clamp(max(open_, ltp) + round(abs(rng.gauss(0, 8 * sigma))) * tick)
        low = clamp(min(open_, ltp) - round(abs(rng.gauss(0, 8 * sigma))) * tick)
        volume = min(lot * rng.randint(1_000, 200_000), OPENING_QUANTITY)
        average = (low + high) // 2
        figures = {
            "ltp": ltp,
            "high": high,
            "week52_high": max(high, round(close * rng.uniform(1.05, 1.6) / tick) * tick),
            "low": low,
            "week52_low": min(low, max(round(close * rng.uniform(0.4, 0.95) / tick), 1) * tick),
            "total_buy": min(lot * rng.randint(500, 50_000), OPENING_QUANTITY),
            "total_sell": min(lot * rng.randint(500, 50_000), OPENING_QUANTITY),
            "last_quantity": lot,
            "average": average,
            "volume": volume,
            "turnover": average * volume,
            "open_interest": min(lot * rng.randint(1_000, 100_000), OPENING_QUANTITY),
            "sequence": 1,
            "last_trade_time": now_ms // 1000,
            "open": open_,
            "close": close,
            "upper_circuit": upper,
            "lower_circuit": lower,
            "tick": tick,
            "lot": lot,
            "derivative": int(listing.derivative),
        }
        if not listing.derivative:
            figures["open_interest"] = 0
        return figures, sigma

    def trade(self, rows: np.ndarray, now_ms: int) -> None:
        """One trade at ``now_ms`` (epoch ms) of each of ``rows`` (distinct row numbers): move the
        price, then the day's statistics."""
        day = self.figures[rows]
        bits = _hash(self._draw_seeds[rows] + day[:, _SEQUENCE].astype(np.uint64) * _GOLDEN)
        bits = bits.astype(np.int64)
        lot = day[:, _LOT]
        move = np.rint(STANDARD_NORMAL[bits & DRAW_MASK] * self._sigma[rows]).astype(np.int64)
        ltp = day[:, _LTP] + move * day[:, _TICK]
        np.maximum(ltp, day[:, _LOWER], out=ltp)
        np.minimum(ltp, day[:, _UPPER], out=ltp)
        day[:, _LTP] = ltp
        column = ltp[:, None]
        highs, lows = day[:, _HIGHS], day[:, _LOWS]
        np.maximum(highs, column, out=highs)
        np.minimum(lows, column, out=lows)
        quantity = lot * TRADE_LOTS[day[:, _DERIVATIVE], bits >> DRAW_BITS & DRAW_MASK]
        day[:, _LAST_QUANTITY] = quantity
        volume = np.minimum(day[:, _VOLUME] + quantity, MAX_QUANTITY)
        day[:, _VOLUME] = volume
        turnover = day[:, _TURNOVER] + ltp * quantity
        day[:, _TURNOVER] = turnover
        day[:, _AVERAGE] = turnover // volume
        # Buy and sell interest side by side, then open interest, which never falls to zero for
        # a derivative and stays zero for a share.
        draws = (bits[:, None] >> _INTEREST_SHIFTS & DRAW_MASK) - INTEREST_CENTRE
        interest = day[:, _INTEREST] + draws * quantity[:, None] // INTEREST_SCALE
        np.maximum(interest, lot[:, None], out=interest)
        np.minimum(interest, MAX_QUANTITY, out=interest)
        day[:, _INTEREST] = interest
        change = OPEN_INTEREST_LOTS[bits >> _OI_SHIFT & DRAW_MASK] * lot
        open_interest = day[:, _OPEN_INTEREST] + change
        np.maximum(open_interest, lot, out=open_interest)
        np.minimum(open_interest, MAX_QUANTITY, out=open_interest)
        day[:, _OPEN_INTEREST] = open_interest * day[:, _DERIVATIVE]
        day[:, _SEQUENCE] += 1
        day[:, _LAST_TRADE_TIME] = now_ms // 1000
        self.figures[rows] = day

    def book(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The best five of each of ``rows`` as of its last trade: (quantities, prices, orders),
        each with one row of ten levels per instrument, five buy levels best first, then five
        sell.

        The best ask is at the last price or one tick above, the best bid one tick below it;
        deeper levels are one or two ticks apart. The same trade always has the same book.
        """
        day = self.figures[rows]
        levels = 2 * DEPTH_LEVELS
        sequence = day[:, _SEQUENCE].astype(np.uint64)
        base = _hash((self._draw_seeds[rows] ^ _BOOK_SALT) + sequence * _GOLDEN)
        words = _hash(base[:, None] + np.arange(1, BOOK_WORDS + 1, dtype=np.uint64) * _GOLDEN)
        draws = words.view(np.uint8).reshape(len(rows), 8 * BOOK_WORDS).astype(np.int64)
        lots = 1 + draws[:, :levels] * MAX_LEVEL_LOTS // 256
        orders = 1 + draws[:, levels : 2 * levels] * np.minimum(lots, MAX_LEVEL_ORDERS) // 256
        gaps = np.where(draws[:, 2 * levels : 3 * levels] < NEXT_LEVEL_ONE_TICK, 1, 2)
        tick, ltp = day[:, _TICK, None], day[:, _LTP, None]
        ask = ltp + tick * (draws[:, 3 * levels : 3 * levels + 1] < 128)
        # Each level's distance in ticks from its side's best: the gaps before it on that side.
        sides = gaps.reshape(len(rows), 2, DEPTH_LEVELS)
        depth = (np.cumsum(sides, axis=2) - sides).reshape(len(rows), levels)
        prices = np.empty_like(lots)
        prices[:, :DEPTH_LEVELS] = ltp - tick - tick * depth[:, :DEPTH_LEVELS]
        prices[:, DEPTH_LEVELS:] = ask + tick * depth[:, DEPTH_LEVELS:]
        return lots * day[:, _LOT, None], prices, orders
