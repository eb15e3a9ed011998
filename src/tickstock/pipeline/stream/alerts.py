"""Live alerts: conditions on consecutive bars of one symbol and timeframe.

- RSI crossing its levels (default 30 and 70), both ways: entering and leaving overbought or
  oversold.
- Price crossing the session VWAP, both ways (close against VWAP, bar over bar).
- Volume surge: a bar's volume at least ``surge_factor`` times the mean of the previous
  ``surge_window`` bars (the window must be full; bars with zero volume count).

Each rule compares the bar with the previous one of the same (symbol, timeframe), so the state
is one small record per pair, warmed from stored history at start-up. A burst is thousands of
bars, each of another pair, so the records are rows of arrays (a slot per pair) and a chunk is
checked with array operations; only the bars that raise an alert become objects. A pair that
repeats within a chunk is checked in order: the chunk is split into runs in which no pair
repeats (its first bars, then its second bars, ...), each run seeing the state the previous
left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import cast

import numpy as np

from tickstock.contracts.common import Timeframe
from tickstock.pipeline.stream.bars import AlertEvent, LiveBar
from tickstock.pipeline.stream.engine import ChunkAnalysis

CROSS_ABOVE = "cross_above"
CROSS_BELOW = "cross_below"
PRICE_CROSS_ABOVE = "price_cross_above"
PRICE_CROSS_BELOW = "price_cross_below"
SURGE = "surge"
VOLUME = "volume"


@dataclass(frozen=True)
class AlertConfig:
    """Which indicator values the rules read (canonical analysis names) and their thresholds."""

    rsi: str = "rsi_14"
    rsi_levels: tuple[float, ...] = (30.0, 70.0)
    vwap: str = "vwap.mid"
    surge_factor: float = 3.0
    surge_window: int = 20


#: An alert found in a chunk before it becomes an object: (bar, rule, direction, value) --
#: rule ``k`` below ``len(rsi_levels)`` is RSI level ``k``, then VWAP, then surge; direction +1
#: above (and a surge), -1 below; the value is the bar's RSI, its VWAP or its window's mean
#: volume.
_Hit = tuple[int, int, int, float]
_SYMBOL, _TIMEFRAME = attrgetter("symbol"), attrgetter("timeframe")


@dataclass(frozen=True, slots=True)
class _Run:
    """Bars of a chunk as the rules read them: their positions in the chunk, slots, closes,
    volumes, RSI and VWAP values (NaN: none)."""

    rows: np.ndarray
    slots: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    rsi: np.ndarray
    vwap: np.ndarray

    def take(self, at: np.ndarray) -> _Run:
        return _Run(self.rows[at], self.slots[at], self.close[at], self.volume[at],
                    self.rsi[at], self.vwap[at])


class AlertRules:
    """Evaluates the rules over the closed bars of a chunk (``check_chunk``), in order.

    The state of a (symbol, timeframe) pair -- its previous close, RSI and VWAP values (NaN:
    none, as for a pair not seen yet) and a ring of its last ``surge_window`` volumes -- is row
    ``slot`` of arrays that grow as pairs appear.
    """

    def __init__(self, config: AlertConfig | None = None) -> None:
        self.config = config or AlertConfig()
        if self.config.surge_window < 1:
            raise ValueError(f"surge_window must be at least 1, got {self.config.surge_window}")
        self._slots: dict[tuple[str, Timeframe], int] = {}
        self._close = np.empty(0)
        self._rsi = np.empty(0)
        self._vwap = np.empty(0)
        self._volumes = np.empty((0, self.config.surge_window))  # a ring a slot
        self._filled = np.empty(0, dtype=np.intp)  # volumes in the ring (up to the window)
        self._next = np.empty(0, dtype=np.intp)  # where the next volume goes (the oldest)

    def warm(self, history: Sequence[LiveBar], values: dict[str, float] | None) -> None:
        """Seed from stored bars (oldest first) and the indicator values of the last one."""
        if not history:
            return
        last = history[-1]
        slot = self._slot(last.symbol, last.timeframe)
        volumes = [b.volume for b in history[-self.config.surge_window:]]
        self._volumes[slot, :len(volumes)] = volumes
        self._filled[slot] = len(volumes)
        self._next[slot] = len(volumes) % self.config.surge_window
        self._close[slot] = last.close
        values = values or {}
        self._rsi[slot] = values.get(self.config.rsi, np.nan)
        self._vwap[slot] = values.get(self.config.vwap, np.nan)

    def check_chunk(self, bars: Sequence[LiveBar], analysis: ChunkAnalysis
                    ) -> list[AlertEvent]:
        """The alerts ``bars`` (closed, in order; ``analysis`` theirs) raise, in bar order and
        per bar RSI levels, VWAP, surge; the state advances past each bar."""
        if not bars:
            return []
        slots, repeat = self._slots_of(bars)
        chunk = _Run(np.arange(len(bars)), slots,
                     np.array([b.close for b in bars], dtype=np.float64),
                     np.array([b.volume for b in bars], dtype=np.float64),
                     _column(analysis, self.config.rsi), _column(analysis, self.config.vwap))
        hits: list[_Hit] = []
        if repeat is None:
            hits += self._run(chunk)
        else:
            for k in range(int(repeat.max()) + 1):
                hits += self._run(chunk.take(np.flatnonzero(repeat == k)))
        hits.sort(key=lambda hit: (hit[0], hit[1]))
        return [self._alert(bars[hit[0]], hit) for hit in hits]

    # -- one run: no pair twice ------------------------------------------------------------------

    def _run(self, run: _Run) -> list[_Hit]:
        """The alerts of ``run`` (its slots distinct), then its bars' state."""
        hits: list[_Hit] = []
        before = self._rsi[run.slots]
        for rule, level in enumerate(self.config.rsi_levels):
            above = (before <= level) & (level < run.rsi)
            below = ~above & (before >= level) & (level > run.rsi)
            hits += _hits(run.rows, above, rule, 1, run.rsi)
            hits += _hits(run.rows, below, rule, -1, run.rsi)
        rule = len(self.config.rsi_levels)
        before, last = self._vwap[run.slots], self._close[run.slots]
        above = (last <= before) & (run.close > run.vwap)
        below = ~above & (last >= before) & (run.close < run.vwap)
        hits += _hits(run.rows, above, rule, 1, run.vwap)
        hits += _hits(run.rows, below, rule, -1, run.vwap)
        full = self._filled[run.slots] == self.config.surge_window
        mean = self._window_mean(run.slots)
        # "not (mean <= 0 or volume < factor * mean)", as the rule reads: NaN compares false
        surge = full & ~((mean <= 0) | (run.volume < self.config.surge_factor * mean))
        hits += _hits(run.rows, surge, rule + 1, 1, mean)
        self._advance(run)
        return hits

    def _window_mean(self, slots: np.ndarray) -> np.ndarray:
        """Each slot's mean volume over its window, summed oldest first one bar after another:
        the float ``sum(window) / len(window)`` gives (a window not yet full: meaningless)."""
        width = self.config.surge_window
        order = (self._next[slots, None] + np.arange(width)) % width
        window = self._volumes[slots[:, None], order]
        total = np.zeros(len(slots))
        for k in range(width):
            total += window[:, k]
        return total / width

    def _advance(self, run: _Run) -> None:
        width, slots = self.config.surge_window, run.slots
        self._close[slots] = run.close
        self._rsi[slots] = run.rsi
        self._vwap[slots] = run.vwap
        at = self._next[slots]
        self._volumes[slots, at] = run.volume
        self._next[slots] = (at + 1) % width
        self._filled[slots] = np.minimum(self._filled[slots] + 1, width)

    # -- slots ---------------------------------------------------------------------------------

    def _slots_of(self, bars: Sequence[LiveBar]) -> tuple[np.ndarray, np.ndarray | None]:
        """Each bar's slot, and how many earlier bars of the chunk share it (``None`` when no
        pair repeats: a burst's usual case)."""
        keys = list(zip(map(_SYMBOL, bars), map(_TIMEFRAME, bars), strict=True))
        known = list(map(self._slots.get, keys))  # every pair's but a new one's
        slots = cast(list[int], known) if None not in known else [
            self._slot(*key) if slot is None else slot for slot, key in zip(known, keys, strict=True)]
        array = np.array(slots, dtype=np.intp)
        if len(set(slots)) == len(slots):
            return array, None
        seen: dict[int, int] = {}
        repeat = []
        for slot in slots:
            n = seen.get(slot, 0)
            repeat.append(n)
            seen[slot] = n + 1
        return array, np.array(repeat, dtype=np.intp)

    def _slot(self, symbol: str, timeframe: Timeframe) -> int:
        key = (symbol, timeframe)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = len(self._slots)
            if slot == len(self._close):
                self._grow(max(64, 2 * slot))
        return slot

    def _grow(self, size: int) -> None:
        had = len(self._close)
        pad = size - had

        def more(array: np.ndarray, fill: float) -> np.ndarray:
            extra = np.full((pad, *array.shape[1:]), fill, dtype=array.dtype)
            return np.concatenate([array, extra])

        self._close, self._rsi, self._vwap = (more(a, np.nan)
                                              for a in (self._close, self._rsi, self._vwap))
        self._volumes = more(self._volumes, 0.0)
        self._filled, self._next = more(self._filled, 0), more(self._next, 0)

    # -- alerts ----------------------------------------------------------------------------------

    def _alert(self, bar: LiveBar, hit: _Hit) -> AlertEvent:
        _, rule, way, now = hit
        side = "above" if way > 0 else "below"
        levels = self.config.rsi_levels
        if rule < len(levels):
            name, level = self.config.rsi, levels[rule]
            return _alert(bar, name, now, CROSS_ABOVE if way > 0 else CROSS_BELOW,
                          threshold=level, message=f"{name} crossed {side} {level:g} ({now:.1f})")
        if rule == len(levels):
            return _alert(bar, self.config.vwap, bar.close,
                          PRICE_CROSS_ABOVE if way > 0 else PRICE_CROSS_BELOW, threshold=now,
                          message=f"price {bar.close:g} crossed {side} VWAP {now:.4g}")
        mean = now
        return _alert(bar, VOLUME, bar.volume, SURGE, threshold=self.config.surge_factor * mean,
                      message=f"volume {bar.volume:g} is {bar.volume / mean:.1f}x the "
                              f"{self.config.surge_window}-bar average")


def _column(analysis: ChunkAnalysis, name: str) -> np.ndarray:
    """Column ``name`` of ``analysis`` (all NaN when it has none)."""
    if name not in analysis.names:
        return np.full(len(analysis), np.nan)
    return analysis.values[:, analysis.names.index(name)]


def _hits(rows: np.ndarray, where: np.ndarray, rule: int, way: int, value: np.ndarray
          ) -> list[_Hit]:
    """The hits of rule ``rule`` (direction ``way``) at ``rows[where]``, with ``value[where]``."""
    at = np.flatnonzero(where)
    if not len(at):
        return []
    return list(zip(cast(list[int], rows[at].tolist()), [rule] * len(at), [way] * len(at),
                    cast(list[float], value[at].tolist()), strict=True))


def _alert(bar: LiveBar, indicator: str, value: float, condition: str, *, threshold: float,
           message: str) -> AlertEvent:
    return AlertEvent(bar.symbol, bar.timeframe, bar.start, indicator, value, condition,
                      threshold, message)
