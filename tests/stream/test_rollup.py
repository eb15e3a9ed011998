"""Live roll-ups equal the batch derivation (``tickstock.market.derive``) of the same minutes."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from tickstock.contracts.common import Timeframe
from tickstock.market.bars import datetime_to_ns
from tickstock.market.calendar import nyse
from tickstock.market.derive import derive
from tickstock.market.replay import SyntheticMinutes, read_minute_csv
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
