"""The synthetic market: deterministic, range-independent, consistent across timeframes."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from tickstock.contracts.common import Timeframe
from tickstock.core.errors import NotFoundError
from tickstock.market.calendar import nyse
from tickstock.market.derive import derive
from tickstock.market.providers import create_provider
from tickstock.market.providers.synthetic import SyntheticConfig, SyntheticProvider
from tickstock.market.validate import validate


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture(scope="module")
def market() -> SyntheticProvider:
    return SyntheticProvider(nyse(), SyntheticConfig(seed=7))


def test_deterministic_and_range_independent(market: SyntheticProvider) -> None:
    whole = market.fetch_bars("AAPL", Timeframe.DAY, utc(2020, 1, 1), utc(2022, 1, 1)).bars
    part = market.fetch_bars("AAPL", Timeframe.DAY, utc(2021, 3, 1), utc(2021, 4, 1)).bars
    again = SyntheticProvider(nyse(), SyntheticConfig(seed=7))
    fresh = again.fetch_bars("AAPL", Timeframe.DAY, utc(2021, 3, 1), utc(2021, 4, 1)).bars
    sub = whole.between(int(part.ts[0]), int(part.ts[-1]) + 1)
    assert np.array_equal(sub.close, part.close) and np.array_equal(fresh.close, part.close)
    other = SyntheticProvider(nyse(), SyntheticConfig(seed=8))
    assert not np.array_equal(
        other.fetch_bars("AAPL", Timeframe.DAY, utc(2021, 3, 1), utc(2021, 4, 1)).bars.close,
        part.close)
    m1 = market.fetch_bars("MSFT", Timeframe.MIN1, utc(2024, 6, 3), utc(2024, 6, 8)).bars
    m2 = market.fetch_bars("MSFT", Timeframe.MIN1, utc(2024, 6, 5), utc(2024, 6, 6)).bars
    assert np.array_equal(m1.between(int(m2.ts[0]), int(m2.ts[-1]) + 1).close, m2.close)


def test_one_session_equals_the_same_session_of_the_whole_history(
    market: SyntheticProvider,
) -> None:
    """A bar is drawn from its own block of sessions plus a few numbers per block: asking for
    one session (the daily top-up) gives the bar of the whole history, on block edges too."""
    whole = market.fetch_bars("IBM", Timeframe.DAY, utc(1990, 1, 1), utc(2036, 1, 1)).bars
    assert len(whole) > 11_000
    for i in (0, 1, 63, 64, 65, 127, 128, 5000, 7551, 7552, len(whole) - 1):
        t = int(whole.ts[i])
        one = market.fetch_bars("IBM", Timeframe.DAY, datetime.fromtimestamp(t // 10**9, UTC),
                                datetime.fromtimestamp(t // 10**9 + 1, UTC)).bars
        assert len(one) == 1 and int(one.ts[0]) == t
        for column in ("open", "high", "low", "close", "volume"):
            assert getattr(one, column)[0] == getattr(whole, column)[i], (i, column)


def test_many_symbols_at_once_equal_each_alone(market: SyntheticProvider) -> None:
    """``fetch_bars_many`` (what the daily top-up asks: one session of a whole universe) draws
    every symbol's bars together; each equals its own ``fetch_bars``, bit for bit, for one
    session, a range across blocks, and other timeframes. Unknown symbols are left out."""
    fresh = SyntheticProvider(nyse(), SyntheticConfig(seed=7))  # no coarse draws cached yet
    symbols = [f"S{i:03d}" for i in range(40)] + ["IBM", "bad symbol"]
    for timeframe, start, end in ((Timeframe.DAY, utc(2024, 6, 3), utc(2024, 6, 4)),
                                  (Timeframe.DAY, utc(2019, 1, 1), utc(2021, 7, 1)),
                                  (Timeframe.WEEK, utc(2024, 1, 1), utc(2024, 3, 1))):
        many = fresh.fetch_bars_many(symbols, timeframe, start, end)
        assert list(many) == symbols[:-1]
        for symbol, got in many.items():
            alone = market.fetch_bars(symbol, timeframe, start, end).bars
            assert len(alone) > 0
            for column in ("ts", "open", "high", "low", "close", "volume"):
                assert np.array_equal(getattr(got.bars, column), getattr(alone, column)), \
                    (symbol, timeframe, column)


def test_only_session_times_and_valid_ohlc(market: SyntheticProvider) -> None:
    cal = nyse()
    day = market.fetch_bars("XOM", Timeframe.DAY, utc(2024, 1, 1), utc(2025, 1, 1)).bars
    days = [datetime.fromtimestamp(int(t) // 10**9, UTC).date() for t in day.ts]
    assert days == cal.session_days(days[0], days[-1])
    assert len(day) == 252
    minutes = market.fetch_bars("XOM", Timeframe.MIN1, utc(2024, 11, 27), utc(2024, 12, 1)).bars
    expected = cal.session_minutes_ns(cal.session(utc(2024, 11, 27).date()).day,
                                      utc(2024, 11, 29).date())
    assert np.array_equal(minutes.ts, expected)  # Thanksgiving skipped, early close honoured
    for frame in (day, minutes):
        clean, issues = validate(frame)
        assert issues == [] and len(clean) == len(frame)
        assert (frame.volume > 0).all()


def test_minutes_aggregate_to_the_daily_bar(market: SyntheticProvider) -> None:
    day = market.fetch_bars("NVDA", Timeframe.DAY, utc(2024, 3, 1), utc(2024, 4, 1)).bars
    minutes = market.fetch_bars("NVDA", Timeframe.MIN1, utc(2024, 3, 1), utc(2024, 4, 1)).bars
    session = minutes.ts // 86_400_000_000_000
    starts = np.flatnonzero(np.diff(np.concatenate([[-1], session])))
    assert np.array_equal(minutes.open[starts], day.open)
    assert np.array_equal(np.maximum.reduceat(minutes.high, starts), day.high)
    assert np.array_equal(np.minimum.reduceat(minutes.low, starts), day.low)
    assert np.array_equal(np.add.reduceat(minutes.volume, starts), day.volume)
    hours = market.fetch_bars("NVDA", Timeframe.HOUR, utc(2024, 3, 1), utc(2024, 4, 1)).bars
    assert np.array_equal(hours.ts, derive(minutes, Timeframe.HOUR, nyse()).ts)
    assert len(hours) == len(day) * 7  # 09:30, 10:30, ..., 15:30 (a half hour)


def test_realistic_shape(market: SyntheticProvider) -> None:
    closes = [market.fetch_bars(f"S{i}", Timeframe.DAY, utc(2015, 1, 1), utc(2025, 1, 1)).bars
              for i in range(30)]
    prices = np.array([f.close[-1] for f in closes])
    assert prices.min() > 1 and prices.max() < 20_000
    returns = np.concatenate([np.diff(np.log(f.close)) for f in closes])
    assert 0.005 < returns.std() < 0.05  # daily volatility of real stocks
    assert np.abs(returns).max() > 6 * returns.std()  # fat tails: gaps happen
    first = closes[0]
    intraday = market.fetch_bars("S0", Timeframe.MIN1, utc(2024, 1, 2), utc(2024, 1, 3)).bars
    vol = intraday.volume
    assert vol[:30].mean() > vol[150:240].mean() and vol[-30:].mean() > vol[150:240].mean()
    assert len(first) > 2500


def test_unknown_symbols_and_factory() -> None:
    provider = create_provider("synthetic", nyse(), synthetic_symbols=frozenset({"AAPL"}))
    with pytest.raises(NotFoundError, match="unknown symbol 'MSFT'"):
        provider.fetch_bars("MSFT", Timeframe.DAY, utc(2024, 1, 1), utc(2024, 2, 1))
    assert provider.capabilities.name == "synthetic"
    assert Timeframe.WEEK in provider.capabilities.timeframes
