"""The bar the stream role moves around: one symbol, one timeframe, one start time.

Live bars travel one at a time (a burst is thousands of them, each for another symbol), so this
is a small slotted object rather than the column frames the batch side uses; ``to_frame`` turns
a run of them into a ``BarFrame`` where a columnar API needs one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import groupby
from operator import attrgetter
from typing import ClassVar, cast

import numpy as np

from tickstock.contracts.common import Timeframe
from tickstock.contracts.events import BarLive, Direction, Event, IndicatorAlert, PatternDetected
from tickstock.core.timeutil import from_epoch_ms
from tickstock.market.bars import BarFrame, datetime_to_ns

MINUTE = timedelta(minutes=1)
_TIMEFRAME, _START = attrgetter("timeframe"), attrgetter("start")


@dataclass(slots=True)
class LiveBar:
    """OHLCV of one symbol over ``[start, end)``; ``vwap`` None when unknown."""

    symbol: str
    timeframe: Timeframe
    start: datetime
    end: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    vwap: float | None = None
    trades: int | None = None
    #: The daily context the analysis reads (``daily_context``): +1 up, -1 down, 0 flat, NaN
    #: unknown. Not part of the bar's data: never stored, never published.
    daily_trend: float = math.nan

    def copy(self) -> LiveBar:
        return replace(self)

    def event(self, *, final: bool, indicators: dict[str, float] | None = None) -> BarLive:
        return BarLive(
            symbol=self.symbol, timeframe=self.timeframe, ts=self.start,
            open=self.open, high=self.high, low=self.low, close=self.close,
            volume=self.volume, vwap=self.vwap, trades=self.trades, final=final,
            indicators=indicators or {},
        )


@dataclass(frozen=True, slots=True)
class BarEvent:
    """One bar's ``bar.live`` event, before the sink packs it into a ``bar.live_batch`` with
    the burst's other bars of its timeframe and start time (``publisher``): no pydantic model
    per bar (a burst is thousands of them; validating a model per bar cost more than analysing
    the bar). A test holds the batches' bars equal to ``model()``; the bar was checked where it
    entered (``LiveProcessor``)."""

    message_type: ClassVar[str] = BarLive.message_type

    bar: LiveBar
    final: bool
    indicators: dict[str, float]

    def model(self) -> BarLive:
        return self.bar.event(final=self.final, indicators=self.indicators)


@dataclass(frozen=True, slots=True, eq=False)
class FinalBars:
    """The ``bar.live`` events of closed bars with their indicator values as columns -- a
    chunk's bars and its analysis (``ChunkAnalysis``) as they are -- which the sink packs into
    ``bar.live_batch`` events by timeframe and start time straight from the columns
    (``publisher``). ``values[i, j]`` is bar ``i``'s value of ``names[j]``, NaN where it has
    none. A test holds the batches' bars equal to ``models()``."""

    message_type: ClassVar[str] = BarLive.message_type

    bars: Sequence[LiveBar]
    names: tuple[str, ...]
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.bars)

    def groups(self) -> list[list[int]]:
        """The positions of the bars of each timeframe and start time, the groups in the order
        of their first bars."""
        # a chunk's bars come in long runs of one key (a burst's minutes, then its 5-minute
        # bars, ...): grouped a run at a time, the bars read by attrgetter, not a loop a bar
        groups: dict[tuple[Timeframe, datetime], list[int]] = {}
        at = 0
        for key, run in groupby(zip(map(_TIMEFRAME, self.bars), map(_START, self.bars),
                                    strict=True)):
            n = len(list(run))
            groups.setdefault(key, []).extend(range(at, at + n))
            at += n
        return list(groups.values())

    def models(self) -> list[BarLive]:
        """Each bar's ``bar.live`` event (its defined values only)."""
        rows = cast(list[list[float]], self.values.tolist())
        return [bar.event(final=True, indicators={
            k: v for k, v in zip(self.names, row, strict=True) if math.isfinite(v)})
            for bar, row in zip(self.bars, rows, strict=True)]


@dataclass(frozen=True, slots=True)
class DetectionEvent:
    """One live ``pattern.detected`` event -- ``PatternDetected``'s fields, and the detection's
    ``evidence`` for the store -- before the sink packs it into a ``pattern.detected_batch``
    (``publisher``) and the store writes it. Not a pydantic model: a minute boundary completes
    thousands of patterns, and validating a model for each cost the role more than publishing
    it; the bar was checked where it entered (``LiveProcessor``), the detection is the engine's
    (a ``Direction``, confidence within [0, 1]). A test holds the batches equal to
    ``model()``."""

    message_type: ClassVar[str] = PatternDetected.message_type
    source: ClassVar[str] = "live"

    symbol: str
    timeframe: Timeframe
    ts: datetime
    pattern: str
    direction: Direction
    confidence: float
    strength: float | None
    price: float
    levels: dict[str, float]
    evidence: dict[str, float]
    daily_agrees: bool | None

    def model(self) -> PatternDetected:
        return PatternDetected(
            symbol=self.symbol, timeframe=self.timeframe, ts=self.ts, pattern=self.pattern,
            direction=self.direction, confidence=self.confidence, strength=self.strength,
            price=self.price, levels=self.levels, daily_agrees=self.daily_agrees,
            source=self.source)


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One ``indicator.alert`` event -- ``IndicatorAlert``'s fields -- before the sink packs
    it into an ``indicator.alert_batch``: not a model each, for the reason
    ``DetectionEvent`` gives (the alert rules raise hundreds a burst). ``model()`` is the
    event."""

    message_type: ClassVar[str] = IndicatorAlert.message_type

    symbol: str
    timeframe: Timeframe
    ts: datetime
    indicator: str
    value: float
    condition: str
    threshold: float | None
    message: str | None

    def model(self) -> IndicatorAlert:
        return IndicatorAlert(
            symbol=self.symbol, timeframe=self.timeframe, ts=self.ts, indicator=self.indicator,
            value=self.value, condition=self.condition, threshold=self.threshold,
            message=self.message)


#: What the stream role publishes: events, and bars (one, or many as columns), detections and
#: alerts the sink batches.
LiveEvent = Event | BarEvent | FinalBars | DetectionEvent | AlertEvent


def minute_bar(symbol: str, start_ms: int, *, open_: float, high: float, low: float,
               close: float, volume: float | None, vwap: float | None,
               trades: int | None = None) -> LiveBar:
    """A closed 1-minute bar from provider fields (epoch milliseconds, possibly missing volume)."""
    start = from_epoch_ms(start_ms)
    if vwap is not None and not math.isfinite(vwap):
        vwap = None
    return LiveBar(symbol, Timeframe.MIN1, start, start + MINUTE, float(open_), float(high),
                   float(low), float(close), float(volume or 0.0), vwap, trades)


def to_frame(bars: Sequence[LiveBar]) -> BarFrame:
    """Bars of one symbol and timeframe (oldest first) as a ``BarFrame``."""
    if not bars:
        raise ValueError("to_frame needs at least one bar")
    first = bars[0]
    return BarFrame(
        symbol=first.symbol, timeframe=first.timeframe,
        ts=np.array([datetime_to_ns(b.start) for b in bars], dtype=np.int64),
        open=np.array([b.open for b in bars]), high=np.array([b.high for b in bars]),
        low=np.array([b.low for b in bars]), close=np.array([b.close for b in bars]),
        volume=np.array([b.volume for b in bars]),
        vwap=np.array([np.nan if b.vwap is None else b.vwap for b in bars]),
        trades=np.array([-1 if b.trades is None else b.trades for b in bars], dtype=np.int64),
    )
