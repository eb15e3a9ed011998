"""The alert rules, checked a chunk at a time, raise exactly what the rules read bar by bar do.

Oracle: ``_Reference`` below, the rules written plainly for one bar after another (the module
docstring of ``alerts``), state a small record per (symbol, timeframe).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tickstock.contracts.common import Timeframe
from tickstock.contracts.events import IndicatorAlert
from tickstock.pipeline.stream.alerts import AlertConfig, AlertRules
from tickstock.pipeline.stream.bars import LiveBar
from tickstock.pipeline.stream.engine import ChunkAnalysis

T0 = datetime(2024, 3, 5, 14, 30, tzinfo=UTC)
NAMES = ("sma_20", "rsi_14", "vwap.mid")


@dataclass
class _Last:
    close: float | None = None
    values: dict[str, float] = field(default_factory=dict)
    volumes: deque[float] = field(default_factory=deque)


class _Reference:
    """Each rule for one bar: RSI levels crossed (``before <= level < now`` above, ``before >=
    level > now`` below), close crossing VWAP (previous close against previous VWAP), a volume
    at least ``factor`` times the mean of a full window of the previous volumes."""

    def __init__(self, config: AlertConfig) -> None:
        self.config = config
        self.last: dict[tuple[str, Timeframe], _Last] = {}

    def _state(self, bar: LiveBar) -> _Last:
        return self.last.setdefault((bar.symbol, bar.timeframe),
                                    _Last(volumes=deque(maxlen=self.config.surge_window)))

    def warm(self, history: Sequence[LiveBar], values: dict[str, float] | None) -> None:
        if history:
            state = self._state(history[-1])
            state.volumes.clear()
            state.volumes.extend(b.volume for b in history)
            state.close, state.values = history[-1].close, dict(values or {})

    def check(self, bar: LiveBar, values: dict[str, float]) -> list[IndicatorAlert]:
        c, state = self.config, self._state(bar)
        out = []
        now, before = values.get(c.rsi), state.values.get(c.rsi)
        if now is not None and before is not None:
            for level in c.rsi_levels:
                if before <= level < now:
                    out.append(_alert(bar, c.rsi, now, "cross_above", level,
                                      f"{c.rsi} crossed above {level:g} ({now:.1f})"))
                elif before >= level > now:
                    out.append(_alert(bar, c.rsi, now, "cross_below", level,
                                      f"{c.rsi} crossed below {level:g} ({now:.1f})"))
        now, before = values.get(c.vwap), state.values.get(c.vwap)
        if now is not None and before is not None and state.close is not None:
            if state.close <= before and bar.close > now:
                out.append(_alert(bar, c.vwap, bar.close, "price_cross_above", now,
                                  f"price {bar.close:g} crossed above VWAP {now:.4g}"))
            elif state.close >= before and bar.close < now:
                out.append(_alert(bar, c.vwap, bar.close, "price_cross_below", now,
                                  f"price {bar.close:g} crossed below VWAP {now:.4g}"))
        window = state.volumes
        if len(window) == c.surge_window:
            mean = sum(window) / len(window)
            if mean > 0 and bar.volume >= c.surge_factor * mean:
                out.append(_alert(bar, "volume", bar.volume, "surge", c.surge_factor * mean,
                                  f"volume {bar.volume:g} is {bar.volume / mean:.1f}x the "
                                  f"{len(window)}-bar average"))
        state.close, state.values = bar.close, values
        window.append(bar.volume)
        return out


def _alert(bar: LiveBar, indicator: str, value: float, condition: str, threshold: float,  # noqa: PLR0917 -- positional, as a table row
           message: str) -> IndicatorAlert:
    return IndicatorAlert(symbol=bar.symbol, timeframe=bar.timeframe, ts=bar.start,
                          indicator=indicator, value=value, condition=condition,
                          threshold=threshold, message=message)


class _Market:
    """Random bars of a few (symbol, timeframe) pairs with RSI and VWAP values that cross
    their levels often, volumes that surge (and are sometimes zero) and missing values."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.pairs = [(f"S{i}", tf) for i in range(6) for tf in (Timeframe.MIN1, Timeframe.MIN5)]
        self.close = {p: 100.0 for p in self.pairs}
        self.rsi = {p: 50.0 for p in self.pairs}
        self.minute = {p: 0 for p in self.pairs}

    def bar(self, pair: tuple[str, Timeframe]) -> tuple[LiveBar, np.ndarray]:
        rng = self.rng
        self.minute[pair] += 1
        start = T0 + timedelta(minutes=self.minute[pair])
        close = self.close[pair] = self.close[pair] * (1 + rng.normal(0, 0.01))
        # volumes of many magnitudes: a mean summed in another order would differ in its bits
        volume = 0.0 if rng.random() < 0.1 else float(rng.lognormal(8, 1.5)) * (
            10 if rng.random() < 0.15 else 1)
        self.rsi[pair] = float(np.clip(self.rsi[pair] + rng.normal(0, 12), 0, 100))
        values = np.array([close * 1.01, self.rsi[pair], close * (1 + rng.normal(0, 0.01))])
        values[rng.random(3) < 0.1] = np.nan
        return LiveBar(pair[0], pair[1], start, start + timedelta(minutes=1), close, close,
                       close, close, volume), values

    def chunk(self, size: int) -> tuple[list[LiveBar], np.ndarray]:
        picked = self.rng.integers(0, len(self.pairs), size)  # pairs repeat within a chunk
        made = [self.bar(self.pairs[k]) for k in picked.tolist()]
        return [b for b, _ in made], np.array([v for _, v in made]).reshape(size, len(NAMES))


def _values(row: np.ndarray, names: Sequence[str] = NAMES) -> dict[str, float]:
    return {k: v for k, v in zip(names, row.tolist(), strict=True) if math.isfinite(v)}


@pytest.mark.parametrize(("config", "seed"), [
    (AlertConfig(), 1),
    (AlertConfig(rsi_levels=(30.0, 50.0, 70.0), surge_factor=2.0, surge_window=4), 2),
    (AlertConfig(surge_window=1, surge_factor=1.5), 3),
])
def test_a_chunk_raises_what_its_bars_raise_one_after_another(config: AlertConfig,
                                                              seed: int) -> None:
    market, rules, reference = _Market(seed), AlertRules(config), _Reference(config)
    # warm-up: most pairs from histories of every length (a window full or not), some with
    # values undefined or NaN (an engine's warm-up answers), two pairs not at all
    for k, pair in enumerate(market.pairs[:-2]):
        history = [market.bar(pair)[0] for _ in range(k * 3)]
        values = None if k % 4 == 1 else {"rsi_14": float(market.rng.uniform(20, 80)),
                                          "vwap.mid": math.nan if k % 4 == 2 else 100.0}
        rules.warm(history, values)
        reference.warm(history[-config.surge_window:], values)
    raised: list[IndicatorAlert] = []
    for size in [1, 2, 30, 7, 60, 1, 120, 45] * 6:
        bars, columns = market.chunk(size)
        want = [a for bar, row in zip(bars, columns, strict=True)
                for a in reference.check(bar, _values(row))]
        got = [a.model()
               for a in rules.check_chunk(bars, ChunkAnalysis.of(NAMES, columns))]
        assert got == want
        raised += got
    # the comparison covered every rule both ways, not only quiet bars
    assert {a.condition for a in raised} == {"cross_above", "cross_below", "price_cross_above",
                                             "price_cross_below", "surge"}


def test_a_chunk_without_the_columns_the_rules_read_raises_only_surges() -> None:
    market, rules, reference = _Market(4), AlertRules(), _Reference(AlertConfig())
    raised = []
    for _ in range(30):
        bars, values = market.chunk(40)
        want = [a for bar, row in zip(bars, values, strict=True)
                for a in reference.check(bar, _values(row[:1], NAMES[:1]))]
        got = [a.model() for a in
               rules.check_chunk(bars, ChunkAnalysis.of(NAMES[:1], values[:, :1]))]
        assert got == want
        raised += got
    assert {a.condition for a in raised} == {"surge"}


def test_a_surge_window_must_hold_a_bar() -> None:
    with pytest.raises(ValueError, match="surge_window"):
        AlertRules(AlertConfig(surge_window=0))
