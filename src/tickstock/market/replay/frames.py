"""What a replay plays: minute frames (every symbol's bar for one minute), from a file or made up.

A frame holds one minute of bars as columns (one array per field), so a 5,000-symbol synthetic
market costs a few hundred kilobytes per minute and the server can answer REST look-ups for any
minute it has played without keeping millions of objects.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tickstock.core.errors import DataValidationError
from tickstock.core.timeutil import NEW_YORK

MINUTE = timedelta(minutes=1)
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ReplayBar:
    """One symbol's minute bar as the replay sends it (times are aware UTC)."""

    symbol: str
    start: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    vwap: float | None
    trades: int | None


@dataclass(frozen=True, eq=False)
class MinuteFrame:
    """Bars of many symbols for the minute starting at ``start`` (column arrays, same order)."""

    start: datetime
    symbols: tuple[str, ...]
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    vwap: FloatArray  # NaN where the minute had no volume
    trades: IntArray

    def __len__(self) -> int:
        return len(self.symbols)

    def bar(self, index: int) -> ReplayBar:
        vwap = float(self.vwap[index])
        return ReplayBar(
            symbol=self.symbols[index],
            start=self.start,
            open=float(self.open[index]),
            high=float(self.high[index]),
            low=float(self.low[index]),
            close=float(self.close[index]),
            volume=float(self.volume[index]),
            vwap=None if np.isnan(vwap) else vwap,
            trades=int(self.trades[index]),
        )

    def bars(self) -> Iterator[ReplayBar]:
        return (self.bar(i) for i in range(len(self.symbols)))


def frames_from_bars(bars: Iterable[ReplayBar]) -> list[MinuteFrame]:
    """Group bars (any order) into one frame per minute, in time order."""
    by_minute: dict[datetime, list[ReplayBar]] = {}
    for bar in bars:
        by_minute.setdefault(bar.start, []).append(bar)
    frames = []
    for start in sorted(by_minute):
        group = sorted(by_minute[start], key=lambda b: b.symbol)
        frames.append(MinuteFrame(
            start=start,
            symbols=tuple(b.symbol for b in group),
            open=np.array([b.open for b in group]),
            high=np.array([b.high for b in group]),
            low=np.array([b.low for b in group]),
            close=np.array([b.close for b in group]),
            volume=np.array([b.volume for b in group]),
            vwap=np.array([np.nan if b.vwap is None else b.vwap for b in group]),
            trades=np.array([b.trades or 0 for b in group], dtype=np.int64),
        ))
    return frames


def read_minute_csv(path: Path, symbol: str) -> list[ReplayBar]:
    """Minute bars of one symbol from a CSV with New York local times.

    The layout is the one of ``shared/data/intraday``: ``Date,Open,Close,High,Low,Volume`` with
    dates like ``11/5/2019 9:30`` (columns are found by name, so order does not matter). A
    ``.gz`` file is read through gzip. A bad row is a DataValidationError naming the row.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    bars: list[ReplayBar] = []
    with opener(path, "rt", newline="") as handle:
        reader = csv.DictReader(handle)
        for line_no, row in enumerate(reader, start=2):
            try:
                local = datetime.strptime(row["Date"].strip() + " -0000", "%m/%d/%Y %H:%M %z")
                # the file's times are New York wall clock: keep the digits, attach the zone
                start = local.replace(tzinfo=NEW_YORK).astimezone(UTC)
                volume = float(row["Volume"] or 0)
                bar = ReplayBar(
                    symbol=symbol, start=start,
                    open=float(row["Open"]), high=float(row["High"]),
                    low=float(row["Low"]), close=float(row["Close"]),
                    volume=volume, vwap=None, trades=0,
                )
            except (KeyError, ValueError, TypeError) as exc:
                raise DataValidationError(f"{path}:{line_no}: unreadable minute bar ({exc})") from None
            if bar.high < bar.low:
                raise DataValidationError(f"{path}:{line_no}: high {bar.high} < low {bar.low}")
            bars.append(bar)
    return bars


def synthetic_symbols(count: int) -> tuple[str, ...]:
    """Deterministic ticker names of the synthetic replay market: ``SYN0001`` …"""
    return tuple(f"SYN{i:04d}" for i in range(1, count + 1))


class SyntheticMinutes:
    """A deterministic random market, one frame per session minute.

    Prices follow a geometric random walk (about 2 % daily volatility, an overnight gap at each
    open); volume follows the intraday U shape. The same seed, symbols and sessions give the
    same frames, so a test can compute what the replay will send.
    """

    def __init__(self, symbols: Sequence[str], seed: int = 42,
                 closes: Mapping[str, float] | None = None) -> None:
        """``closes``: a starting price per symbol (e.g. its last stored daily close), so the
        made-up minutes continue a known chart; other symbols start at a random price."""
        if not symbols:
            raise DataValidationError("a synthetic replay needs at least one symbol")
        self.symbols = tuple(symbols)
        self._rng = np.random.default_rng(seed)
        n = len(self.symbols)
        self._close: FloatArray = _cents(np.exp(self._rng.uniform(np.log(10), np.log(400), n)))
        for i, symbol in enumerate(self.symbols):
            known = (closes or {}).get(symbol)
            if known is not None and known > 0:
                self._close[i] = round(known, 2)
        self._daily_volume: FloatArray = np.exp(self._rng.uniform(np.log(2e5), np.log(2e7), n))
        self._sigma: FloatArray = self._rng.uniform(0.012, 0.035, n) / np.sqrt(390.0)

    def session(self, open_: datetime, close: datetime) -> Iterator[MinuteFrame]:
        """Frames for every minute of one session ``[open_, close)``."""
        minutes = int((close - open_) / MINUTE)
        self._close = _cents(self._close * np.exp(self._rng.normal(0, 0.006, len(self.symbols))))
        for k in range(minutes):
            yield self._minute(open_ + k * MINUTE, k, minutes)

    def sessions(self, sessions: Iterable[tuple[datetime, datetime]]) -> Iterator[MinuteFrame]:
        for open_, close in sessions:
            yield from self.session(open_, close)

    def _minute(self, start: datetime, k: int, minutes: int) -> MinuteFrame:
        rng, n = self._rng, len(self.symbols)
        open_: FloatArray = self._close
        close: FloatArray = np.maximum(_cents(open_ * np.exp(rng.normal(0, 1, n) * self._sigma)), 0.01)
        wick = np.abs(rng.normal(0, 1, (2, n))) * self._sigma * 0.6
        high: FloatArray = _cents(np.maximum(open_, close) * (1 + wick[0]))
        low: FloatArray = np.maximum(_cents(np.minimum(open_, close) * (1 - wick[1])), 0.01)
        x = (k + 0.5) / minutes
        shape: float = 1.0 + 2.5 * (2.0 * x - 1.0) ** 2  # the intraday U: busy open and close
        volume: FloatArray = np.floor(self._daily_volume / minutes * shape / 1.83 * rng.lognormal(0, 0.5, n))
        vwap: FloatArray = np.asarray(np.round((high + low + close) / 3.0, 4), dtype=np.float64)
        trades = np.maximum(volume // 120, 1).astype(np.int64)
        self._close = close
        return MinuteFrame(start, self.symbols, open_, high, low, close, volume, vwap, trades)


def _cents(prices: FloatArray) -> FloatArray:
    return np.asarray(np.round(prices, 2), dtype=np.float64)
