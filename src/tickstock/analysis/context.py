"""Daily context for intraday bars: the ``daily_trend`` input (the seeds' "combo" tier).

An intraday detection is confirmed when the daily trend points its way. The daily trend an
intraday bar sees is that of the last daily bar *completed before its session started* (no
look-ahead: during Tuesday's session, Monday's close is the latest daily fact)::

    trend = sign(close - SMA(close, period))     of that daily bar; +1 up, -1 down, 0 flat
    trend = NaN                                   no such daily bar, or its SMA still warming up

Both engines read it from ``Bars.daily_trend`` / ``Bar.daily_trend``; the caller (daily run,
live stream) builds it with ``daily_trend`` from the daily bars it already has.
"""

from __future__ import annotations

import numpy as np
import talib

from tickstock.analysis.bars import Bars, FloatArray, IntArray

TREND_PERIOD = 50


def daily_trend(daily: Bars, session: IntArray, period: int = TREND_PERIOD) -> FloatArray:
    """Per intraday bar (given its ``session`` start, ns), the trend of the last daily bar
    stamped before the UTC date of that session start (so the session's own daily bar, however
    it is stamped that day, is never read)."""
    session = np.asarray(session, dtype=np.int64)
    if len(daily) == 0:
        return np.full(session.shape[0], np.nan)
    trend = np.sign(daily.close - talib.SMA(daily.close, timeperiod=period))  # NaN while warming up
    day = session - session % 86_400_000_000_000
    last = np.searchsorted(daily.ts, day, side="left") - 1
    out = np.full(session.shape[0], np.nan)
    known = last >= 0
    out[known] = trend[last[known]]
    return out
