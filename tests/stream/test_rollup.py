"""Live roll-ups equal the batch derivation (``tickstock.market.derive``) of the same minutes."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickstock.contracts.common import Timeframe
from tickstock.market.bars import datetime_to_ns
from tickstock.market.calendar import nyse
from tickstock.market.derive import derive
from tickstock.market.replay import SyntheticMinutes, read_minute_csv, synthetic_symbols
from tickstock.pipeline.stream.bars import LiveBar, minute_bar, to_frame
from tickstock.pipeline.stream.rollup import DERIVED, Rollup
from tickstock.pipeline.stream.sessions import SessionLookup


def _minutes_from_csv(shared_data: Path) -> list[LiveBar]:
    rows = read_minute_csv(shared_data / "intraday" / "SP500_NOV2019_IDay.csv", "SP500")
    return [minute_bar(r.symbol, int(r.start.timestamp() * 1000), open_=r.open, high=r.high,
                       low=r.low, close=r.close, volume=r.volume, vwap=r.vwap) for r in rows]


def _synthetic(day: date, n_symbols: int = 3) -> list[LiveBar]:
    session = nyse().session(day)
    bars = []
    for frame in SyntheticMinutes([f"S{i}" for i in range(n_symbols)], seed=11).session(
            session.open, session.close):
        for b in frame.bars():
            bars.append(minute_bar(b.symbol, int(b.start.timestamp() * 1000), open_=b.open,
                                   high=b.high, low=b.low, close=b.close, volume=b.volume,
                                   vwap=b.vwap, trades=b.trades))
    return bars


def _roll(minutes: list[LiveBar]) -> dict[Timeframe, list[LiveBar]]:
    rollup = Rollup(SessionLookup(nyse()))
    out: dict[Timeframe, list[LiveBar]] = {tf: [] for tf in DERIVED}
    for m in minutes:
        for bar in rollup.add(m):
            out[bar.timeframe].append(bar)
    last = max(m.start for m in minutes) + timedelta(days=1)
    for bar in rollup.flush(last):
        out[bar.timeframe].append(bar)
    return out


def _assert_same(live: list[LiveBar], minutes: list[LiveBar], tf: Timeframe) -> None:
    batch = derive(to_frame(minutes), tf, nyse())
    assert len(live) == len(batch), tf
    assert [datetime_to_ns(b.start) for b in live] == batch.ts.tolist()
    for name in ("open", "high", "low", "close", "volume"):
        assert np.array_equal([getattr(b, name) for b in live], getattr(batch, name)), (tf, name)
    vwap = np.array([np.nan if b.vwap is None else b.vwap for b in live])
    np.testing.assert_allclose(vwap, batch.vwap, rtol=1e-12, equal_nan=True)


def test_minute_file_rolls_up_like_the_batch_derivation(shared_data: Path) -> None:
    minutes = _minutes_from_csv(shared_data)
    live = _roll(minutes)
    for tf in DERIVED:
        _assert_same(live[tf], minutes, tf)
    # session-anchored: 7 hourly bars a day, the last one 15:30-16:00; the 16:00 prints ignored
    assert len(live[Timeframe.HOUR]) == 4 * 7
    assert len(live[Timeframe.MIN5]) == 4 * 78
    last_hour = live[Timeframe.HOUR][6]
    assert (last_hour.end - last_hour.start) == timedelta(minutes=30)


def test_early_close_ends_the_last_buckets_at_the_close() -> None:
    day = date(2019, 11, 29)  # the day after Thanksgiving: 13:00 close
    minutes = _synthetic(day)
    live = _roll(sorted(minutes, key=lambda b: (b.symbol, b.start)))
    hours = [b for b in live[Timeframe.HOUR] if b.symbol == "S1"]
    assert len(hours) == 4  # 09:30, 10:30, 11:30, 12:30-13:00
    assert hours[-1].end == nyse().session(day).close
    for symbol in ("S0", "S1", "S2"):
        mine = [m for m in minutes if m.symbol == symbol]
        for tf in DERIVED:
            _assert_same([b for b in live[tf] if b.symbol == symbol], mine, tf)


def test_a_bucket_closes_on_its_last_minute_or_when_a_later_one_arrives() -> None:
    minutes = [m for m in _synthetic(date(2024, 3, 1), 1)][:12]  # 09:30 .. 09:41
    rollup = Rollup(SessionLookup(nyse()), (Timeframe.MIN5,))
    closed = [rollup.add(m) for m in minutes[:5]]
    assert [len(c) for c in closed] == [0, 0, 0, 0, 1]  # 09:34 completes 09:30-09:35
    # 09:39 is missing: 09:35-09:40 closes when 09:40 arrives, without it
    assert rollup.add(minutes[5]) == []
    for m in minutes[6:9]:
        rollup.add(m)
    forming = rollup.forming("S0", Timeframe.MIN5)
    assert forming is not None and forming.close == minutes[8].close
    forming.close = -1.0  # a copy: the rollup is not changed
    out = rollup.add(minutes[10])
    assert len(out) == 1 and out[0].close == minutes[8].close
    assert out[0].volume == pytest.approx(sum(m.volume for m in minutes[5:9]))
    # flush closes a bucket whose time has passed, unless the symbol is held for a repair
    assert rollup.flush(minutes[11].end + timedelta(minutes=5), skip={"S0"}) == []
    flushed = rollup.flush(minutes[11].end + timedelta(minutes=5))
    assert [b.start for b in flushed] == [minutes[10].start]


def test_minutes_outside_regular_hours_are_not_rolled_up() -> None:
    session = nyse().session(date(2024, 3, 1))
    pre = minute_bar("S0", int((session.open - timedelta(minutes=1)).timestamp() * 1000),
                     open_=1, high=1, low=1, close=1, volume=1, vwap=1)
    assert Rollup(SessionLookup(nyse())).add(pre) == []


# -- add_many: a batch at once, the same as add one minute at a time ---------------------------

_FIELDS = ("symbol", "timeframe", "start", "end", "open", "high", "low", "close", "volume",
           "vwap", "trades")
_DAYS = (date(2024, 7, 2), date(2024, 7, 3))  # a full session, then a 13:00 early close


def _fields(bar: LiveBar) -> str:
    # repr: floats to the bit (and -0.0), and a numpy scalar would show as one
    return repr(tuple(getattr(bar, f) for f in _FIELDS))


def _by_series(bars: list[LiveBar]) -> dict[tuple[str, Timeframe], list[str]]:
    series: dict[tuple[str, Timeframe], list[str]] = {}
    for bar in bars:
        series.setdefault((bar.symbol, bar.timeframe), []).append(_fields(bar))
    return series


@st.composite
def _streams(draw: st.DrawFn) -> list[LiveBar]:
    """Minutes of a few symbols over two sessions (the second an early close) in time order:
    gaps, symbols missing minutes, minutes just outside the session, the minutes of bucket
    boundaries, a minute repeated, vwap or trades unknown, zero volume."""
    calendar = nyse()
    minutes: list[LiveBar] = []
    for day in _DAYS:
        session = calendar.session(day)
        length = session.minutes
        near = st.one_of(st.integers(-3, 8), st.integers(55, 65), st.integers(length - 8, length + 3),
                         st.integers(-3, length + 3))
        for symbol in draw(st.sets(st.sampled_from("ABCDE"), min_size=1)):
            for offset in sorted(draw(st.sets(near, min_size=1, max_size=25))):
                start = session.open + timedelta(minutes=offset)
                for _ in range(draw(st.sampled_from((1, 1, 1, 1, 2)))):  # 2: a repeated minute
                    minutes.append(_minute(draw, symbol, int(start.timestamp() * 1000)))
    order = draw(st.permutations(range(len(minutes))))  # the symbols' order within a minute
    return [minutes[i] for i in sorted(order, key=lambda i: minutes[i].start)]


def _minute(draw: st.DrawFn, symbol: str, start_ms: int) -> LiveBar:
    price = st.floats(1.0, 500.0)
    return minute_bar(symbol, start_ms, open_=draw(price), high=draw(price), low=draw(price),
                      close=draw(price), volume=draw(st.sampled_from((0.0, 100.0)) | st.floats(0.0, 1e6)),
                      vwap=draw(st.none() | price), trades=draw(st.none() | st.integers(0, 10**6)))


@settings(max_examples=300, deadline=None)
@given(minutes=_streams(), data=st.data())
def test_add_many_closes_and_leaves_forming_what_add_does_one_at_a_time(
        minutes: list[LiveBar], data: st.DataObject) -> None:
    one = Rollup(SessionLookup(nyse()))
    many = Rollup(SessionLookup(nyse()), batch_min=data.draw(st.sampled_from((1, 3))))
    symbols = sorted({m.symbol for m in minutes})
    at = 0
    while at < len(minutes):
        batch = minutes[at:at + data.draw(st.integers(1, 12))]
        at += len(batch)
        expected = [bar for m in batch for bar in one.add(m)]
        assert _by_series(many.add_many(batch)) == _by_series(expected)
        if data.draw(st.booleans()):  # the service flushes at minute boundaries
            before = batch[-1].end + timedelta(minutes=data.draw(st.integers(0, 90)))
            skip = data.draw(st.sets(st.sampled_from(symbols)))
            assert [_fields(b) for b in many.flush(before, skip)] == [
                _fields(b) for b in one.flush(before, skip)]
    for symbol in symbols:
        for tf in DERIVED:
            mine, theirs = many.forming(symbol, tf), one.forming(symbol, tf)
            assert (mine and _fields(mine)) == (theirs and _fields(theirs))
    end = minutes[-1].end + timedelta(days=1)
    assert [_fields(b) for b in many.flush(end)] == [_fields(b) for b in one.flush(end)]


def test_a_burst_of_5000_symbols_closes_their_5_minute_bars() -> None:
    session = nyse().session(date(2024, 3, 1))
    market = SyntheticMinutes(synthetic_symbols(5000), seed=3).session(session.open, session.close)
    frames = [[minute_bar(b.symbol, int(b.start.timestamp() * 1000), open_=b.open, high=b.high,
                          low=b.low, close=b.close, volume=b.volume, vwap=b.vwap, trades=b.trades)
               for b in next(market).bars()] for _ in range(5)]
    rollup = Rollup(SessionLookup(nyse()))
    assert all(rollup.add_many(frame) == [] for frame in frames[:4])
    forming = rollup.forming("SYN0042", Timeframe.MIN15)
    assert forming is not None and forming.close == frames[3][41].close
    closed = rollup.add_many(frames[4])  # 09:34: the 09:30-09:35 bars complete
    assert len(closed) == 5000
    assert {(b.timeframe, b.start, b.end) for b in closed} == {
        (Timeframe.MIN5, session.open, session.open + timedelta(minutes=5))}
    for bar in closed[::499]:
        mine = [frame[int(bar.symbol[3:]) - 1] for frame in frames]
        assert {m.symbol for m in mine} == {bar.symbol}
        assert (bar.open, bar.close) == (mine[0].open, mine[-1].close)
        assert (bar.high, bar.low) == (max(m.high for m in mine), min(m.low for m in mine))
        assert bar.volume == sum(m.volume for m in mine)
        assert bar.trades == sum(m.trades or 0 for m in mine)
    one = Rollup(SessionLookup(nyse()))
    expected = [bar for frame in frames for m in frame for bar in one.add(m)]
    assert [_fields(b) for b in closed] == [_fields(b) for b in expected]
    assert rollup.forming("SYN0042", Timeframe.MIN5) is None
