"""The simulated market: one random walk per instrument, in the units brokers send on the wire.

Each instrument trades around a plausible price: the master's reference price, a premium derived
from the strike for an option the master gives no price, or a price drawn from a hash of the token
for an instrument the master does not know. Every trade moves the last price by a whole number of
ticks and updates the day's statistics the way an exchange would: high and low follow the price,
open and previous close stay fixed, volume accumulates, the average price is the day's
volume-weighted price.

Prices are kept as integers in wire units (paise; 10^-7 rupee for currency derivatives, as both
brokers send them), so a broker dialect packs a tick in one :meth:`struct.Struct.pack` call on
values that are already in place.

Every instrument draws from its own random generator, seeded from the market's seed and its token,
so a seeded run repeats the same price sequence per token whatever else is subscribed and however
the ticks interleave in time.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from statistics import NormalDist

from backend.feed import DEPTH_LEVELS
from backend.instruments import Instrument

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
# distribution as tables of quantiles, indexed by one uniform draw, which costs a fraction of
# random.gauss and random.expovariate.
QUANTILES = 4096
STANDARD_NORMAL = tuple(NormalDist().inv_cdf((i + 0.5) / QUANTILES) for i in range(QUANTILES))
STANDARD_EXPONENTIAL = tuple(-math.log(1 - (i + 0.5) / QUANTILES) for i in range(QUANTILES))
# A trade's draws are 12-bit fields of one random integer: move, size, buy and sell interest,
# open interest.
DRAW_BITS = 12
DRAW_MASK = QUANTILES - 1
TRADE_DRAW_BITS = 5 * DRAW_BITS
# Lots per trade by mean, and the open interest's change in lots, as whole numbers per quantile.
TRADE_LOTS = {
    mean: tuple(1 + int(e * mean) for e in STANDARD_EXPONENTIAL)
    for mean in (CASH_TRADE_LOTS, DERIVATIVE_TRADE_LOTS)
}
OPEN_INTEREST_LOTS = tuple(round(z * 2) for z in STANDARD_NORMAL)
# Buy and sell interest move by (draw - centre) / scale trade sizes: up to twice one, either way.
INTEREST_CENTRE = QUANTILES // 2
INTEREST_SCALE = QUANTILES // 4

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


class PriceWalk:
    """One instrument's trading day, advanced one trade at a time by :meth:`step`.

    Attributes are the packet's fields in wire units; every price is a multiple of ``tick``.
    ``sequence`` grows by one per trade; ``last_trade_time`` is in epoch seconds, as the broker
    sends it.
    """

    __slots__ = (
        "_bits",
        "_book",
        "_lot",
        "_rng",
        "_sigma",
        "_trade_lots",
        "average",
        "close",
        "high",
        "last_quantity",
        "last_trade_time",
        "low",
        "lower_circuit",
        "ltp",
        "open",
        "open_interest",
        "sequence",
        "tick",
        "total_buy",
        "total_sell",
        "turnover",
        "upper_circuit",
        "volume",
        "week52_high",
        "week52_low",
    )

    def __init__(self, listing: Listing, rng: random.Random, now_ms: int) -> None:
        self._rng = rng
        self._bits = rng.getrandbits
        self._lot = lot = listing.lot_size
        mean_lots = DERIVATIVE_TRADE_LOTS if listing.derivative else CASH_TRADE_LOTS
        self._trade_lots = TRADE_LOTS[mean_lots]
        divisor = listing.divisor
        self.tick = tick = max(round(listing.tick_size * divisor), 1)

        self.close = close = max(round(listing.price * divisor / tick), MIN_CLOSE_TICKS) * tick
        self.upper_circuit = math.floor(close * (1 + listing.circuit_band) / tick) * tick
        self.lower_circuit = math.ceil(close * (1 - listing.circuit_band) / tick) * tick
        self._sigma = sigma = max(close * VOLATILITY / tick, 0.5)

        # The day so far: an opening gap, a morning's drift, and a range around both.
        self.open = self._clamp(close + round(rng.gauss(0, 10 * sigma)) * tick)
        self.ltp = self._clamp(self.open + round(rng.gauss(0, 20 * sigma)) * tick)
        spread = round(abs(rng.gauss(0, 8 * sigma))) * tick
        self.high = self._clamp(max(self.open, self.ltp) + spread)
        spread = round(abs(rng.gauss(0, 8 * sigma))) * tick
        self.low = self._clamp(min(self.open, self.ltp) - spread)
        self.week52_high = max(self.high, round(close * rng.uniform(1.05, 1.6) / tick) * tick)
        self.week52_low = min(self.low, max(round(close * rng.uniform(0.4, 0.95) / tick), 1) * tick)

        self.volume = min(lot * rng.randint(1_000, 200_000), OPENING_QUANTITY)
        self.average = (self.low + self.high) // 2
        self.turnover = self.average * self.volume
        self.last_quantity = lot
        self.total_buy = min(lot * rng.randint(500, 50_000), OPENING_QUANTITY)
        self.total_sell = min(lot * rng.randint(500, 50_000), OPENING_QUANTITY)
        open_interest = min(lot * rng.randint(1_000, 100_000), OPENING_QUANTITY)
        self.open_interest = open_interest if listing.derivative else 0
        self.sequence = 1
        self.last_trade_time = now_ms // 1000
        self._book: tuple[int, ...] | None = None

    def _clamp(self, price: int) -> int:
        return min(max(price, self.lower_circuit), self.upper_circuit)

    def step(self, now_ms: int) -> None:
        """One trade at ``now_ms`` (epoch ms): move the price, then the day's statistics.

        It runs for every tick the simulator sends, so it is written for speed: one random
        integer for all its draws, whole-number tables, comparisons for clamping.
        """
        bits = self._bits(TRADE_DRAW_BITS)
        lot = self._lot
        move = round(STANDARD_NORMAL[bits & DRAW_MASK] * self._sigma)
        if move:
            ltp = self.ltp + move * self.tick
            if ltp > self.upper_circuit:
                ltp = self.upper_circuit
            elif ltp < self.lower_circuit:
                ltp = self.lower_circuit
            self.ltp = ltp
            if ltp > self.high:
                self.high = ltp
                self.week52_high = max(self.week52_high, ltp)
            elif ltp < self.low:
                self.low = ltp
                self.week52_low = min(self.week52_low, ltp)
        quantity = lot * self._trade_lots[bits >> DRAW_BITS & DRAW_MASK]
        self.last_quantity = quantity
        volume = self.volume + quantity
        self.volume = volume = volume if volume < MAX_QUANTITY else MAX_QUANTITY
        self.turnover = turnover = self.turnover + self.ltp * quantity
        self.average = turnover // volume
        buy = (bits >> 2 * DRAW_BITS & DRAW_MASK) - INTEREST_CENTRE
        sell = (bits >> 3 * DRAW_BITS & DRAW_MASK) - INTEREST_CENTRE
        buy = self.total_buy + buy * quantity // INTEREST_SCALE
        sell = self.total_sell + sell * quantity // INTEREST_SCALE
        self.total_buy = lot if buy < lot else buy if buy < MAX_QUANTITY else MAX_QUANTITY
        self.total_sell = lot if sell < lot else sell if sell < MAX_QUANTITY else MAX_QUANTITY
        if self.open_interest:  # a derivative: its open interest never falls to zero
            open_interest = self.open_interest + OPEN_INTEREST_LOTS[bits >> 4 * DRAW_BITS] * lot
            self.open_interest = min(max(open_interest, lot), MAX_QUANTITY)
        self.sequence += 1
        self.last_trade_time = now_ms // 1000
        self._book = None

    def quote(self) -> tuple[int, ...]:
        """The day's figures after the last price, in the order both brokers' quote packets carry
        them: last quantity, average price, volume, total buy and sell quantity, open, high, low,
        previous close."""
        return (
            self.last_quantity,
            self.average,
            self.volume,
            self.total_buy,
            self.total_sell,
            self.open,
            self.high,
            self.low,
            self.close,
        )

    def book(self) -> tuple[int, ...]:
        """The best five as SmartStream packs it: per level (flag, quantity, price, orders)."""
        return self._book or self._make_book()

    def _make_book(self) -> tuple[int, ...]:
        """The best five as packed: five buy levels (flag 1) best first, then five sell (flag 0).

        The best ask is at the last price or one tick above, the best bid one tick below it;
        deeper levels are one or two ticks apart. The book is kept until the next trade.
        """
        random_ = self._rng.random
        tick, lot = self.tick, self._lot
        ask = self.ltp + tick if random_() < 0.5 else self.ltp
        bid = self.ltp - tick
        buys: list[int] = []
        sells: list[int] = []
        for _ in range(DEPTH_LEVELS):
            lots = 1 + int(random_() * MAX_LEVEL_LOTS)
            buys += (1, lots * lot, bid, 1 + int(random_() * min(lots, MAX_LEVEL_ORDERS)))
            lots = 1 + int(random_() * MAX_LEVEL_LOTS)
            sells += (0, lots * lot, ask, 1 + int(random_() * min(lots, MAX_LEVEL_ORDERS)))
            bid -= tick if random_() < 0.7 else 2 * tick
            ask += tick if random_() < 0.7 else 2 * tick
        self._book = book = (*buys, *sells)
        return book


class Market:
    """Every instrument's :class:`PriceWalk`, made on first use and shared by all connections.

    ``instruments`` maps the broker's key for each token to its instrument (with the bundled
    master's reference price); ``exchange_of`` names the exchange of a key it does not hold.
    ``seed`` (any int or str) makes the market repeatable; without one each market differs.
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
        self._walks: dict[Hashable, PriceWalk] = {}

    def walk(self, key: Hashable, now_ms: int) -> PriceWalk:
        """The walk of the token ``key``, started at ``now_ms`` if it is new."""
        walk = self._walks.get(key)
        if walk is None:
            rng = self.random(key_text(key))
            instrument = self._instruments.get(key)
            walk = PriceWalk(listing(instrument, key, self._exchange_of(key)), rng, now_ms)
            self._walks[key] = walk
        return walk

    def random(self, purpose: str) -> random.Random:
        """A generator for ``purpose``, seeded from the market's seed."""
        return random.Random(f"{self._seed}:{purpose}")
