"""The incremental analysis the stream role drives, behind one small interface.

``LiveEngine`` is what the processor needs: warm a (symbol, timeframe) from stored bars, feed
it one closed bar (``update``: state advances) or a forming one (``peek``: nothing commits),
and get back the indicator values and the pattern detections of that bar. A burst is analysed a
chunk at a time (``update_chunks``) and answered as columns (``ChunkAnalysis``): the processor
checks alerts and publishes bars straight from them, with no dict a bar.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from math import isnan
from typing import Protocol, cast

import numpy as np

from tickstock.contracts.common import Timeframe
from tickstock.contracts.events import Direction
from tickstock.core.errors import TickStockError
from tickstock.pipeline.stream.bars import LiveBar


class EngineLost(TickStockError):
    """The engine's state is gone (a process holding it died): the role must restart and warm
    up again, not carry on analysing part of the market."""


@dataclass(frozen=True, slots=True)
class Detection:
    """A pattern completed on a bar."""

    pattern: str
    direction: Direction
    confidence: float
    strength: float | None = None
    levels: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, float] = field(default_factory=dict)
    daily_agrees: bool | None = None

    def __reduce__(self) -> tuple[type[Detection], tuple[object, ...]]:
        # pickled as its fields in order (analysis processes answer with hundreds a chunk):
        # a quarter of the time of the dataclass's own state to pickle, half to unpickle
        return (Detection, (self.pattern, self.direction, self.confidence, self.strength,
                            self.levels, self.evidence, self.daily_agrees))


@dataclass(frozen=True, slots=True)
class BarAnalysis:
    """Indicator values (finite: a value not yet defined is absent) and detections of a bar."""

    values: dict[str, float]
    detections: tuple[Detection, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class ChunkAnalysis:
    """The analyses of a chunk of bars as columns: ``values[i, j]`` is bar ``i``'s value of
    ``names[j]`` (float64, NaN where the value is not defined) and ``detections[i]`` its
    detections. Build it with ``of``, which makes every undefined value NaN."""

    names: tuple[str, ...]
    values: np.ndarray
    detections: list[tuple[Detection, ...]]

    @classmethod
    def of(cls, names: Sequence[str], values: np.ndarray,
           detections: list[tuple[Detection, ...]]) -> ChunkAnalysis:
        """From an engine's answer: one row of values a bar, non-finite where not defined."""
        rows = np.asarray(values, dtype=np.float64).reshape(len(detections), len(names))
        finite = np.isfinite(rows)
        if not finite.all():
            rows = np.where(finite, rows, np.nan)
        return cls(tuple(names), rows, detections)

    def __len__(self) -> int:
        return len(self.detections)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ChunkAnalysis):
            return NotImplemented
        return (self.names == other.names and self.detections == other.detections
                and np.array_equal(self.values, other.values, equal_nan=True))

    __hash__ = None  # type: ignore[assignment]

    def bar(self, i: int) -> BarAnalysis:
        """Bar ``i``'s analysis (its defined values only)."""
        row = cast(list[float], self.values[i].tolist())
        return BarAnalysis({k: v for k, v in zip(self.names, row, strict=True) if not isnan(v)},
                           self.detections[i])

    def bars(self) -> list[BarAnalysis]:
        """Every bar's analysis, in order."""
        names = self.names
        complete = cast(list[bool], (~np.isnan(self.values)).all(axis=1).tolist())  # most
        return [BarAnalysis(dict(zip(names, row, strict=True)) if whole else
                            {k: v for k, v in zip(names, row, strict=True) if not isnan(v)}, found)
                for row, whole, found in zip(cast(list[list[float]], self.values.tolist()),
                                             complete, self.detections, strict=True)]


class LiveEngine(Protocol):
    """Incremental indicators and patterns per (symbol, timeframe)."""

    def warmup_bars(self, timeframe: Timeframe) -> int:
        """How many stored bars ``warm`` wants to reach full state."""

    def warm(self, history: Sequence[LiveBar]) -> dict[str, float]:
        """Start (or restart) the state of one symbol and timeframe from its stored bars,
        oldest first (the last is the newest bar already processed); return the indicator
        values of that last bar."""

    def warm_many(self, histories: Sequence[Sequence[LiveBar]]) -> list[dict[str, float]]:
        """``warm`` for each of ``histories`` (each one symbol and timeframe), in one call."""

    def update(self, bar: LiveBar) -> BarAnalysis:
        """Advance the state with a closed bar and return its analysis."""

    def update_many(self, bars: Sequence[LiveBar]) -> list[BarAnalysis]:
        """``update`` for each of ``bars`` in order (a burst: one bar of many symbols, a
        symbol and timeframe may repeat), in one pass where the engine can."""

    def update_chunks(self, chunks: Sequence[Sequence[LiveBar]]
                      ) -> Generator[ChunkAnalysis, None, None]:
        """``update_many`` of each chunk in turn, as columns, yielded as it is ready; an engine
        that can may analyse the next chunk while the caller handles this one."""

    def peek(self, bar: LiveBar) -> BarAnalysis:
        """The analysis a forming bar would have if it closed now; commits nothing."""

    def close(self) -> None:
        """Release what the engine holds (processes); it is not used afterwards."""
