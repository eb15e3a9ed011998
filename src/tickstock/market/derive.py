"""Higher timeframes from lower ones, session-aware. Pure functions over ``BarFrame``.

- 5min / 15min / hour from 1min: buckets are anchored at each session's open (09:30 New
  York), so hour bars are 09:30-10:30, ..., 15:30-16:00; on an early close the last bucket ends
  at the close. Minutes outside a session are dropped.
- week / month from day: a week bar is stamped at the Monday of its week, a month bar at the
  first of its month, both midnight UTC; they cover the sessions inside.

A bucket is emitted only when complete: its end (bucket end or session close, whichever is
first; for weeks/months the last session in it) is at or before ``complete_before``.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from tickstock.contracts.common import Timeframe
from tickstock.market.bars import INTRADAY_MINUTES, NS_PER_DAY, NS_PER_MINUTE, BarFrame
from tickstock.market.calendar import MarketCalendar

I64 = npt.NDArray[np.int64]

#: What each derivable timeframe is built from.
DERIVED_FROM: dict[Timeframe, Timeframe] = {
    Timeframe.MIN5: Timeframe.MIN1,
    Timeframe.MIN15: Timeframe.MIN1,
    Timeframe.HOUR: Timeframe.MIN1,
    Timeframe.WEEK: Timeframe.DAY,
    Timeframe.MONTH: Timeframe.DAY,
}


def derive(
    base: BarFrame, target: Timeframe, calendar: MarketCalendar, complete_before: int | None = None
) -> BarFrame:
    """Aggregate ``base`` (1min or day, sorted) into ``target``."""
    source = DERIVED_FROM.get(target)
    if source is None or base.timeframe != source:
        raise ValueError(f"{target.value} bars cannot be derived from {base.timeframe.value}")
    if len(base) == 0:
        return BarFrame.empty(base.symbol, target)
    if target in INTRADAY_MINUTES:
        keys, ends, keep = _intraday_buckets(base, INTRADAY_MINUTES[target], calendar)
        base = base.take(keep)
    else:
        keys, ends = _calendar_buckets(base.ts, target, calendar)
    return _aggregate(base, target, keys, ends, complete_before)


def _intraday_buckets(
    base: BarFrame, minutes: int, calendar: MarketCalendar
) -> tuple[I64, I64, npt.NDArray[np.bool_]]:
    epoch = date(1970, 1, 1)
    first = epoch + timedelta(days=int(base.ts[0] // NS_PER_DAY) - 1)
    last = epoch + timedelta(days=int(base.ts[-1] // NS_PER_DAY) + 1)
    _, opens, closes = calendar.session_arrays(first, last)
    idx = np.searchsorted(opens, base.ts, side="right") - 1
    inside = (idx >= 0) & (base.ts < closes[np.clip(idx, 0, None)])
    idx = idx[inside]
    ts = base.ts[inside]
    width = minutes * NS_PER_MINUTE
    starts = opens[idx] + (ts - opens[idx]) // width * width
    ends = np.minimum(starts + width, closes[idx])
    return starts, ends, inside


def _calendar_buckets(ts: I64, target: Timeframe, calendar: MarketCalendar) -> tuple[I64, I64]:
    days = ts.astype("datetime64[ns]").astype("datetime64[D]")
    if target is Timeframe.WEEK:
        # 1970-01-01 was a Thursday: shift so that weeks start on Monday
        starts_d = ((days.astype(np.int64) + 3) // 7 * 7 - 3).astype("datetime64[D]")
    else:
        starts_d = days.astype("datetime64[M]").astype("datetime64[D]")
    starts = starts_d.astype("datetime64[ns]").astype(np.int64)
    # the bucket ends after the last session inside it
    period = np.timedelta64(7, "D") if target is Timeframe.WEEK else None
    if period is not None:
        next_d = starts_d + period
    else:
        next_d = (starts_d.astype("datetime64[M]") + 1).astype("datetime64[D]")
    ends = _last_session_close(next_d, calendar)
    return starts, ends


def _last_session_close(next_period: npt.NDArray[Any], cal: MarketCalendar) -> I64:
    uniq, inverse = np.unique(next_period, return_inverse=True)
    lo: date = uniq[0].astype("datetime64[D]").item() - timedelta(days=40)
    hi: date = uniq[-1].astype("datetime64[D]").item()
    days, _, closes = cal.session_arrays(lo, hi)
    pos = np.searchsorted(days, uniq.astype("datetime64[ns]").astype(np.int64), side="left") - 1
    result: I64 = closes[pos][inverse]
    return result


def _aggregate(
    base: BarFrame, target: Timeframe, keys: I64, ends: I64, complete_before: int | None
) -> BarFrame:
    if len(keys) == 0:
        return BarFrame.empty(base.symbol, target)
    breaks = np.flatnonzero(np.diff(keys)) + 1
    starts = np.concatenate([[0], breaks])
    last = np.concatenate([breaks - 1, [len(keys) - 1]])
    volume = np.add.reduceat(base.volume, starts)
    has_vwap = np.isfinite(base.vwap)
    pv = np.add.reduceat(np.where(has_vwap, base.vwap * base.volume, 0.0), starts)
    pv_volume = np.add.reduceat(np.where(has_vwap, base.volume, 0.0), starts)
    all_vwap = np.logical_and.reduceat(has_vwap, starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        vwap = np.where(all_vwap & (pv_volume > 0), pv / pv_volume, np.nan)
    known = base.trades >= 0
    trades = np.where(
        np.logical_and.reduceat(known, starts),
        np.add.reduceat(np.where(known, base.trades, 0), starts),
        -1,
    )
    out = BarFrame(
        base.symbol, target, keys[starts], base.open[starts],
        np.maximum.reduceat(base.high, starts), np.minimum.reduceat(base.low, starts),
        base.close[last], volume, vwap, trades.astype(np.int64),
    )
    if complete_before is not None:
        out = out.take(ends[starts] <= complete_before)
    return out
