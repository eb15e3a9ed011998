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

from tickstock.analysis.results import DetectionFields, FoundRows
from tickstock.contracts.common import Timeframe
from tickstock.contracts.events import Direction
from tickstock.core.errors import TickStockError
from tickstock.pipeline.stream.bars import DetectionEvent, LiveBar


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


@dataclass(frozen=True, slots=True)
class BarAnalysis:
    """Indicator values (finite: a value not yet defined is absent) and detections of a bar."""

    values: dict[str, float]
    detections: tuple[Detection, ...] = ()


_DIRECTIONS = {d.value: d for d in Direction}


def _live(fields: DetectionFields) -> tuple[str, Direction, float, float, dict[str, float],
                                            dict[str, float], bool | None]:
    """An analysis detection's fields (``analysis.results``) in ``Detection``'s order, its
    direction a ``Direction`` and its confidence clipped to [0, 1]."""
    pattern, direction, strength, confidence, levels, evidence, agrees = fields
    return (pattern, _DIRECTIONS[direction], min(1.0, max(0.0, confidence)), strength, levels,
            evidence, agrees)


def detection_of(fields: DetectionFields) -> Detection:
    """The ``Detection`` of an analysis detection's fields."""
    return Detection(*_live(fields))


def detection_events(bars: Sequence[LiveBar], found: FoundRows) -> list[DetectionEvent]:
    """The events of the detections ``found`` on ``bars`` (``found.rows`` index them), made
    straight from the columns: no ``Detection`` on the way."""
    events = []
    for row, fields in zip(found.rows.tolist(), found.fields(), strict=True):
        bar = bars[row]
        pattern, direction, confidence, strength, levels, evidence, agrees = _live(fields)
        events.append(DetectionEvent(bar.symbol, bar.timeframe, bar.start, pattern, direction,
                                     confidence, strength, bar.close, levels, evidence, agrees))
    return events


def no_detections() -> FoundRows:
    """The detections of a chunk where no pattern completed."""
    return FoundRows.concat((), [])


@dataclass(frozen=True, slots=True, eq=False)
class ChunkAnalysis:
    """The analyses of a chunk of bars as columns: ``values[i, j]`` is bar ``i``'s value of
    ``names[j]`` (float64, NaN where the value is not defined) and ``found`` the detections,
    each on its bar's row (``found.rows``) -- columns too: an analysis process sends them as
    a few arrays, and the processor makes an event of each straight from them. Build it with
    ``of``, which makes every undefined value NaN."""

    names: tuple[str, ...]
    values: np.ndarray
    found: FoundRows

    @classmethod
    def of(cls, names: Sequence[str], values: np.ndarray,
           found: FoundRows | None = None) -> ChunkAnalysis:
        """From an engine's answer: one row of values a bar, non-finite where not defined."""
        rows = np.asarray(values, dtype=np.float64)
        rows = rows.reshape(rows.shape[0] if rows.ndim else 0, len(names))
        finite = np.isfinite(rows)
        if not finite.all():
            rows = np.where(finite, rows, np.nan)
        return cls(tuple(names), rows, no_detections() if found is None else found)

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ChunkAnalysis):
            return NotImplemented
        return (self.names == other.names and self.detections == other.detections
                and np.array_equal(self.values, other.values, equal_nan=True))

    __hash__ = None  # type: ignore[assignment]

    @property
    def detections(self) -> list[tuple[Detection, ...]]:
        """Each bar's detections, in order (built on each call)."""
        by_bar: list[list[Detection]] = [[] for _ in range(len(self))]
        for row, fields in zip(self.found.rows.tolist(), self.found.fields(), strict=True):
            by_bar[row].append(detection_of(fields))
        return [tuple(found) for found in by_bar]

    def bar(self, i: int) -> BarAnalysis:
        """Bar ``i``'s analysis (its defined values only)."""
        i = range(len(self))[i]  # a negative index counts from the end; out of range raises
        row = cast(list[float], self.values[i].tolist())
        mine = self.found.take(np.flatnonzero(self.found.rows == i))
        return BarAnalysis({k: v for k, v in zip(self.names, row, strict=True) if not isnan(v)},
                           tuple(map(detection_of, mine.fields())))

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
