"""Confidence: the documented formula, by hand and re-derived from each detection's evidence.

Oracle: the formula in ``tickstock.analysis.patterns.scoring`` written out again here in plain
Python (``S``, ``T``, ``V`` and the weights), applied to hand-made inputs and to the evidence the
engine records with every real detection.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tickstock.analysis import Bars, batch, get
from tickstock.analysis.patterns.found import Found
from tickstock.analysis.patterns.scoring import ROLE_SIGN, score
from tickstock.analysis.spec import PatternSpec


def confidence(strength: float, direction: int, role: int, x: float, rvol: float) -> float:
    s = 0.5 if math.isnan(strength) else strength
    a = max(-1.0, min(1.0, x / 3.0))
    t = 0.5 if direction == 0 or role == 0 or math.isnan(x) else (1 + role * direction * a) / 2
    v = 0.5 if math.isnan(rvol) else max(0.0, min(1.0, rvol / 2))
    return 0.45 * s + 0.35 * t + 0.20 * v


def test_confidence_by_hand() -> None:
    # one row per case: close, sma_50, atr_14, rvol_20
    close = np.array([110.0, 110.0, 90.0, 100.0, 100.0])
    sma = np.array([100.0, 100.0, 100.0, np.nan, 100.0])
    atr = np.array([5.0, 5.0, 5.0, 5.0, 5.0])
    rvol = np.array([3.0, 1.0, 0.5, np.nan, 1.0])
    cols = {"close": close, "sma_50": sma, "atr_14": atr, "rvol_20": rvol}
    n = 5
    found = Found(
        pattern=np.array([0, 1, 1, 0, 2]),  # 0 continuation, 1 reversal, 2 neutral role
        index=np.arange(n),
        direction=np.array([1, 1, 1, -1, 0], dtype=np.int8),
        strength=np.array([1.0, 0.5, 0.4, np.nan, 0.2]),
        metric=np.zeros(n),
        level=np.zeros(n),
        high=np.full(n, 120.0),
        low=np.full(n, 80.0),
    )
    roles = np.array([ROLE_SIGN["continuation"], ROLE_SIGN["reversal"], ROLE_SIGN["neutral"]])
    got = score(found, roles, cols)
    # x = (close - sma) / atr = 2, 2, -2, nan, 0
    want = [
        0.45 * 1.0 + 0.35 * (1 + 2 / 3) / 2 + 0.20 * 1.0,  # bullish continuation above trend
        0.45 * 0.5 + 0.35 * (1 - 2 / 3) / 2 + 0.20 * 0.5,  # bullish reversal above trend: weak
        0.45 * 0.4 + 0.35 * (1 + 2 / 3) / 2 + 0.20 * 0.25,  # bullish reversal below trend: strong
        0.45 * 0.5 + 0.35 * 0.5 + 0.20 * 0.5,  # nothing known
        0.45 * 0.2 + 0.35 * 0.5 + 0.20 * 0.5,  # neutral
    ]
    assert got.confidence.tolist() == pytest.approx(want, rel=1e-12)
    assert got.stop.tolist()[:4] == [80.0, 80.0, 80.0, 120.0] and math.isnan(got.stop[4])


def test_real_confidences_follow_from_their_evidence(daily_universe: dict[str, Bars]) -> None:
    seen: set[float] = set()
    for symbol in ("AAPL", "XOM", "JPM"):
        for d in batch.compute(daily_universe[symbol]).detections:
            spec = get(d.pattern)
            assert isinstance(spec, PatternSpec)
            role, direction = ROLE_SIGN[spec.role], {"bullish": 1, "bearish": -1, "neutral": 0}[d.direction]
            ev = d.evidence
            want = confidence(
                d.strength, direction, role, ev.get("trend_atr", math.nan), ev.get("rvol", math.nan)
            )
            assert d.confidence == pytest.approx(want, abs=1e-12), d
            assert 0.0 <= d.confidence <= 1.0
            if direction:  # a directional detection has a stop on the other side of it
                assert d.levels["stop"] == (d.levels["low"] if direction > 0 else d.levels["high"])
            seen.add(round(d.confidence, 6))
    assert len(seen) > 1000  # evidence, not a constant
