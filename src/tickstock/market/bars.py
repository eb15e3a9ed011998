"""Bars as columns: the one shape every provider returns and every writer takes.

A ``BarFrame`` is one symbol and one timeframe, oldest first, times as int64 nanoseconds since
the epoch (UTC) of each bar's start. Daily bars are stamped at midnight UTC of the session date,
weekly bars at the Monday of the week, monthly bars at the first of the month. ``vwap`` is NaN
and ``trades`` is -1 where the source does not say.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from tickstock.contracts.common import Timeframe

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

NS_PER_MINUTE = 60_000_000_000
NS_PER_DAY = 86_400_000_000_000
INTRADAY: frozenset[Timeframe] = frozenset(
    {Timeframe.MIN1, Timeframe.MIN5, Timeframe.MIN15, Timeframe.HOUR}
)
#: Bar length in minutes of the intraday timeframes (the last bar of a session may be shorter).
INTRADAY_MINUTES: dict[Timeframe, int] = {
    Timeframe.MIN1: 1,
    Timeframe.MIN5: 5,
    Timeframe.MIN15: 15,
    Timeframe.HOUR: 60,
}
PRICE_COLUMNS = ("open", "high", "low", "close")


def ns_to_datetime(ns: int) -> datetime:
    """A nanosecond epoch stamp as aware UTC (microsecond precision)."""
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC) + timedelta(
        microseconds=(ns % 1_000_000_000) // 1000
    )


def datetime_to_ns(dt: datetime) -> int:
    """Aware datetime to nanoseconds since the epoch; naive is refused."""
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt.isoformat()} has no timezone")
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


@dataclass(frozen=True, eq=False)
class BarFrame:
    """Bars of one symbol and timeframe, as parallel numpy columns, oldest first."""

    symbol: str
    timeframe: Timeframe
    ts: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    vwap: F64 = field(default_factory=lambda: np.empty(0))
    trades: I64 = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    def __post_init__(self) -> None:
        n = len(self.ts)
        # vwap/trades are optional: fill "unknown" so every column has the same length
        if len(self.vwap) != n:
            object.__setattr__(self, "vwap", np.full(n, np.nan))
        if len(self.trades) != n:
            object.__setattr__(self, "trades", np.full(n, -1, dtype=np.int64))
        for name in ("open", "high", "low", "close", "volume"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"BarFrame column {name} has {len(getattr(self, name))} "
                                 f"values for {n} times")

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def empty(cls, symbol: str, timeframe: Timeframe) -> BarFrame:
        nothing = np.empty(0)
        return cls(symbol, timeframe, np.empty(0, dtype=np.int64), nothing, nothing, nothing,
                   nothing, nothing)

    def take(self, index: npt.NDArray[np.bool_] | npt.NDArray[np.intp] | slice) -> BarFrame:
        """The rows selected by a boolean mask, an index array or a slice."""
        return BarFrame(
            self.symbol, self.timeframe, self.ts[index], self.open[index], self.high[index],
            self.low[index], self.close[index], self.volume[index], self.vwap[index],
            self.trades[index],
        )

    def between(self, start_ns: int, end_ns: int) -> BarFrame:
        """Bars with ``start_ns <= ts < end_ns`` (the frame must be sorted)."""
        lo = int(np.searchsorted(self.ts, start_ns, side="left"))
        hi = int(np.searchsorted(self.ts, end_ns, side="left"))
        return self.take(slice(lo, hi))

    def first_time(self) -> datetime | None:
        return ns_to_datetime(int(self.ts[0])) if len(self) else None

    def last_time(self) -> datetime | None:
        return ns_to_datetime(int(self.ts[-1])) if len(self) else None

    @staticmethod
    def concat(frames: Sequence[BarFrame]) -> BarFrame:
        """Frames of one symbol/timeframe joined in order (the caller keeps them disjoint)."""
        if not frames:
            raise ValueError("concat of no frames")
        first = frames[0]
        cols = {
            name: np.concatenate([getattr(f, name) for f in frames])
            for name in ("ts", "open", "high", "low", "close", "volume", "vwap", "trades")
        }
        return BarFrame(first.symbol, first.timeframe, **cols)


@dataclass(frozen=True, slots=True)
class RowIssue:
    """One input row (or a whole symbol) refused, with the reason; reported, never stored."""

    symbol: str
    reason: str
    timeframe: str = ""
    row: int | None = None  # 1-based line of the source file / position in the response
    ts: datetime | None = None

    def __str__(self) -> str:
        where = [self.symbol]
        if self.timeframe:
            where.append(self.timeframe)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.ts is not None:
            where.append(f"({self.ts.isoformat()})")
        return f"{' '.join(where)}: {self.reason}"
