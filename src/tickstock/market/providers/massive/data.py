"""Massive aggregates (``Agg`` objects of the official client) into BarFrames.

Massive stamps daily bars at New York midnight and weekly bars at the Sunday that starts the
week; TickStock stamps day/week/month bars at midnight UTC of the session date / Monday /
first of the month, so those are re-stamped here. Intraday bars keep their start time.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from tickstock.contracts.common import Timeframe
from tickstock.market.bars import INTRADAY, BarFrame

#: (multiplier, timespan) of each timeframe in the aggregates endpoint
TIMESPANS: dict[Timeframe, tuple[int, str]] = {
    Timeframe.MIN1: (1, "minute"),
    Timeframe.MIN5: (5, "minute"),
    Timeframe.MIN15: (15, "minute"),
    Timeframe.HOUR: (1, "hour"),
    Timeframe.DAY: (1, "day"),
    Timeframe.WEEK: (1, "week"),
    Timeframe.MONTH: (1, "month"),
}


def _column(aggs: list[Any], name: str, missing: float = np.nan) -> np.ndarray[Any, Any]:
    return np.array([missing if (v := getattr(a, name)) is None else v for a in aggs],
                    dtype=np.float64)


def aggs_to_frame(symbol: str, timeframe: Timeframe, aggs: Iterable[Any]) -> BarFrame:
    """Turn the client's ``Agg`` objects into a frame (unvalidated, provider order)."""
    items = list(aggs)
    ms = np.array([a.timestamp if a.timestamp is not None else -1 for a in items], dtype=np.int64)
    ns = ms * 1_000_000
    if timeframe not in INTRADAY:
        ns = _restamp(ns, timeframe)
    trades = _column(items, "transactions", -1.0)
    return BarFrame(
        symbol, timeframe, ns, _column(items, "open"), _column(items, "high"),
        _column(items, "low"), _column(items, "close"), _column(items, "volume"),
        _column(items, "vwap"), trades.astype(np.int64),
    )


def _restamp(ns: np.ndarray[Any, Any], timeframe: Timeframe) -> np.ndarray[Any, Any]:
    local = pd.DatetimeIndex(ns.astype("datetime64[ns]"), tz="UTC").tz_convert("America/New_York")
    days = local.tz_localize(None).to_numpy().astype("datetime64[D]")
    if timeframe is Timeframe.WEEK:
        # Sunday-started weeks become Monday-started: same trading days, ISO week stamp
        weekday = (days.astype(np.int64) + 3) % 7  # 0 = Monday
        days = days + np.where(weekday == 6, 1, -weekday).astype("timedelta64[D]")
    elif timeframe is Timeframe.MONTH:
        days = days.astype("datetime64[M]").astype("datetime64[D]")
    result: np.ndarray[Any, Any] = days.astype("datetime64[ns]").astype(np.int64)
    return result
