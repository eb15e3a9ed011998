"""Bar inputs of the analysis engine: a whole history (``Bars``) or one bar (``Bar``).

Times are ``int64`` nanoseconds since the Unix epoch, UTC (what ``numpy.datetime64[ns]`` holds);
a bar is stamped with its start. Two optional inputs come from the caller, because analysis
knows no calendar and reads no settings:

- ``session``: per bar, the start time (same unit) of the trading session the bar belongs to.
  Session VWAP resets when it changes, pivot points come from the previous session, and
  intraday relative volume compares a bar with the bars at the same offset from the session
  start (``ts - session``) in earlier sessions. ``None`` for daily and longer bars.
- ``daily_trend``: per intraday bar, the daily context the caller derived from daily bars
  (``+1`` daily uptrend, ``-1`` downtrend, ``nan`` unknown; e.g. the sign of the last daily
  close minus the daily ``sma_50``). A detection records whether it agrees ("combo" tier).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from tickstock.core.errors import DataValidationError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Base input columns every spec may read.
OPEN, HIGH, LOW, CLOSE, VOLUME = "open", "high", "low", "close", "volume"
TS, SESSION, DAILY_TREND = "ts", "session", "daily_trend"
PRICE_COLUMNS = (OPEN, HIGH, LOW, CLOSE, VOLUME)
BASE_COLUMNS = (*PRICE_COLUMNS, TS, SESSION, DAILY_TREND)


def ns_to_datetime(ns: int) -> datetime:
    """An epoch-nanosecond stamp as an aware UTC datetime (microsecond precision)."""
    return datetime.fromtimestamp(ns // 1000 / 1e6, tz=UTC)


def datetime_to_ns(dt: datetime) -> int:
    """An aware datetime as epoch nanoseconds; naive datetimes are refused."""
    if dt.tzinfo is None:
        raise DataValidationError(f"naive datetime {dt.isoformat()} has no timezone")
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _float_column(name: str, values: object, n: int | None) -> FloatArray:
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.ndim != 1 or (n is not None and arr.shape[0] != n):
        raise DataValidationError(f"input {name!r}: expected a 1-D array of {n} values")
    return arr


@dataclass(frozen=True, eq=False)
class Bars:
    """A symbol's bar history on one timeframe, oldest first, as contiguous numpy arrays.

    Prices and volume must be finite (drop incomplete rows before building ``Bars``);
    ``ts`` must be strictly increasing.
    """

    symbol: str
    timeframe: str
    ts: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    session: IntArray | None = None
    daily_trend: FloatArray | None = None

    def __post_init__(self) -> None:
        ts = np.ascontiguousarray(self.ts, dtype=np.int64)
        n = ts.shape[0]
        object.__setattr__(self, "ts", ts)
        for name in PRICE_COLUMNS:
            arr = _float_column(name, getattr(self, name), n)
            if not np.isfinite(arr).all():
                row = int(np.flatnonzero(~np.isfinite(arr))[0])
                raise DataValidationError(
                    f"{self.symbol}/{self.timeframe}: {name} is not finite at row {row}"
                )
            object.__setattr__(self, name, arr)
        if n > 1 and not (np.diff(ts) > 0).all():
            raise DataValidationError(f"{self.symbol}/{self.timeframe}: ts is not increasing")
        if self.session is not None:
            object.__setattr__(self, "session", np.ascontiguousarray(self.session, np.int64))
            if self.session.shape[0] != n:
                raise DataValidationError(f"input 'session': expected {n} values")
        if self.daily_trend is not None:
            object.__setattr__(self, "daily_trend", _float_column(DAILY_TREND, self.daily_trend, n))

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def column(self, name: str) -> FloatArray | IntArray | None:
        """A base column by name (``None`` for an optional input that was not given)."""
        value: FloatArray | IntArray | None = getattr(self, name)
        return value

    def slice(self, start: int, stop: int | None = None) -> Bars:
        """The bars ``[start, stop)`` as a new ``Bars`` (views, no copy)."""
        sl = slice(start, stop)
        return Bars(
            self.symbol,
            self.timeframe,
            self.ts[sl],
            self.open[sl],
            self.high[sl],
            self.low[sl],
            self.close[sl],
            self.volume[sl],
            None if self.session is None else self.session[sl],
            None if self.daily_trend is None else self.daily_trend[sl],
        )

    def bar(self, i: int) -> Bar:
        """Row ``i`` as a single ``Bar`` (what the live stream hands the incremental engine)."""
        return Bar(
            symbol=self.symbol,
            timeframe=self.timeframe,
            ts=int(self.ts[i]),
            open=float(self.open[i]),
            high=float(self.high[i]),
            low=float(self.low[i]),
            close=float(self.close[i]),
            volume=float(self.volume[i]),
            session=None if self.session is None else int(self.session[i]),
            daily_trend=math.nan if self.daily_trend is None else float(self.daily_trend[i]),
        )


@dataclass(slots=True)
class Bar:
    """One bar of one symbol: closed (``Engine.update``) or still forming (``Engine.peek``).

    Not frozen: a live burst builds thousands a second, and a frozen dataclass sets each field
    through ``object.__setattr__`` (a fifth of the incremental engine's time); treat it as a
    value all the same."""

    symbol: str
    timeframe: str
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    session: int | None = None
    daily_trend: float = field(default=math.nan)

    def __post_init__(self) -> None:
        finite = math.isfinite
        if not (finite(self.open) and finite(self.high) and finite(self.low)
                and finite(self.close) and finite(self.volume)):
            name = next(n for n in PRICE_COLUMNS if not finite(getattr(self, n)))
            raise DataValidationError(
                f"{self.symbol}/{self.timeframe} bar at {self.ts}: {name} is not finite"
            )
