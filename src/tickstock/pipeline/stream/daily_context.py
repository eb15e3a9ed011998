"""The daily trend each live bar is analysed with: an intraday pattern is confirmed when the
daily trend points its way (the seeds' "combo" tier, ``analysis.context``).

During a session a symbol's trend is that of its last daily bar stored before the session's
day (no look-ahead: during Tuesday's session, Monday's close is the latest daily fact). The
trends of every symbol are read once per session, in one query, the first time a bar of that
session is analysed (at the warm-up, or with the session's first minute). A symbol without
enough daily history gets NaN: no verdict, the detection's ``daily_agrees`` stays empty.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np

from tickstock.analysis import Bars
from tickstock.analysis.bars import datetime_to_ns
from tickstock.analysis.context import TREND_PERIOD, daily_trend
from tickstock.contracts.common import Timeframe
from tickstock.core.timeutil import NEW_YORK, session_day_start_utc
from tickstock.pipeline.stream.bars import LiveBar, to_frame
from tickstock.pipeline.stream.sessions import SessionLookup
from tickstock.pipeline.stream.storage import BarStore

logger = logging.getLogger(__name__)

_SESSIONS_KEPT = 3  # the warm-up history may reach back into earlier sessions


class DailyTrends:
    """Sets ``LiveBar.daily_trend`` from the stored daily bars of ``symbols``."""

    def __init__(self, store: BarStore, sessions: SessionLookup, symbols: Sequence[str],
                 period: int = TREND_PERIOD) -> None:
        self.store = store
        self.sessions = sessions
        self.symbols = tuple(symbols)
        self.period = period
        self._by_session: dict[datetime, dict[str, float]] = {}

    def apply(self, bars: Iterable[LiveBar]) -> None:
        """Give each bar the daily trend of its session (NaN outside a session)."""
        for bar in bars:
            session = self.sessions.session_of(bar.start)
            if session is None:
                bar.daily_trend = math.nan
                continue
            trends = self._by_session.get(session.open)
            if trends is None:
                trends = self._load(session.open)
            bar.daily_trend = trends.get(bar.symbol, math.nan)

    def _load(self, session_open: datetime) -> dict[str, float]:
        started = time.perf_counter()
        day = session_day_start_utc(session_open.astimezone(NEW_YORK).date())
        stored = self.store.last_bars(self.symbols, Timeframe.DAY, self.period, before=day)
        at = np.array([datetime_to_ns(session_open)], dtype=np.int64)
        trends = {}
        for symbol, bars in stored.items():
            f = to_frame(bars)
            history = Bars(symbol, Timeframe.DAY.value, f.ts, f.open, f.high, f.low, f.close,
                           f.volume)
            trends[symbol] = float(daily_trend(history, at, self.period)[0])
        while len(self._by_session) >= _SESSIONS_KEPT:
            del self._by_session[min(self._by_session)]
        self._by_session[session_open] = trends
        known = sum(1 for t in trends.values() if not math.isnan(t))
        logger.info("daily trends read", extra={
            "session_open": session_open.isoformat(), "symbols": len(self.symbols),
            "with_trend": known, "seconds": round(time.perf_counter() - started, 2)})
        return trends
