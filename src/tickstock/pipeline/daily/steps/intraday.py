"""What an intraday timeframe's analysis reads besides its bars, as the live stream gives it.

- The session each bar belongs to (its open, ns): the session VWAP restarts with it and the
  intraday relative volume compares the same time of day. A bar outside regular hours opens
  no session: its own start (as ``stream.analysis_engine`` does).
- The daily trend of that session (``analysis.context``, the seeds' "combo" tier), from the
  symbol's stored daily bars: an intraday detection then records whether the daily trend agrees.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg

from tickstock.analysis.bars import Bars, FloatArray, IntArray, datetime_to_ns
from tickstock.analysis.context import TREND_PERIOD, daily_trend
from tickstock.market.calendar import MarketCalendar
from tickstock.pipeline.daily.steps.tails import Tail, read_tails

_DAY_NS = 86_400_000_000_000


def session_opens(calendar: MarketCalendar, ts: IntArray) -> IntArray:
    """Per bar start (ns), the open of the regular session holding it; its own start if none."""
    ts = np.asarray(ts, dtype=np.int64)
    if ts.shape[0] == 0:
        return ts.copy()
    first = datetime.fromtimestamp(int(ts[0]) / 1e9, UTC).date() - timedelta(days=1)
    last = datetime.fromtimestamp(int(ts[-1]) / 1e9, UTC).date() + timedelta(days=1)
    sessions = calendar.sessions(first, last)
    opens = np.array([datetime_to_ns(s.open) for s in sessions], dtype=np.int64)
    closes = np.array([datetime_to_ns(s.close) for s in sessions], dtype=np.int64)
    k = np.searchsorted(opens, ts, side="right") - 1
    inside = k >= 0
    inside[inside] &= ts[inside] < closes[k[inside]]
    return np.where(inside, opens[np.maximum(k, 0)], ts)


def read_daily(conn: psycopg.Connection[Any], tails: dict[str, Tail]) -> dict[str, Bars]:
    """The daily bars each intraday tail's daily trend reads: from ``TREND_PERIOD`` sessions
    before its first bar to its end (one query for the batch)."""
    if not tails:
        return {}
    span_days = max(int((t.ts[-1] - t.ts[0]) // _DAY_NS) + 1 for t in tails.values() if len(t.ts))
    until = datetime.fromtimestamp(
        max(int(t.ts[-1]) for t in tails.values() if len(t.ts)) / 1e9, UTC) + timedelta(days=1)
    daily = read_tails(conn, list(tails), "day", span_days + TREND_PERIOD + 5, until)
    return {s: Bars(s, "day", d.ts, d.open, d.high, d.low, d.close, d.volume)
            for s, d in daily.items()}


def trends(daily: Bars | None, sessions: IntArray) -> FloatArray:
    """Per intraday bar, the daily trend of its session (NaN without daily history)."""
    if daily is None:
        return np.full(np.asarray(sessions).shape[0], np.nan)
    return daily_trend(daily, sessions)
