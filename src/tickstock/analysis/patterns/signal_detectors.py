"""Vectorised detectors of the signal patterns specified in ``tickstock.analysis.patterns.signals``.

Detectors evaluate their condition on every row of a frame; ``ok[i]`` says whether row ``i``
may fire (it has the ``lag`` earlier rows of its own segment, and it is reported), so a frame
of many symbols gives each one exactly its own answer. What each kind measures (``metric``)
and how that becomes ``strength`` is tabled in the ``signals`` module docstring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tickstock.analysis.bars import CLOSE, HIGH, LOW, OPEN, FloatArray
from tickstock.analysis.kernels.common import safe_ratio
from tickstock.analysis.patterns.found import EMPTY, Found
from tickstock.analysis.patterns.scoring import SCORING_COLUMNS
from tickstock.analysis.spec import Columns, PatternSpec

IntArray = NDArray[np.int64]
_ATR = SCORING_COLUMNS[2]


@dataclass(frozen=True)
class _Hits:
    index: IntArray
    direction: NDArray[np.int8]
    level: FloatArray
    metric: FloatArray
    strength: FloatArray


BoolArray = NDArray[np.bool_]


def _col(cols: Columns, name: str) -> FloatArray:
    return np.asarray(cols[name], dtype=np.float64)


def _rows(cond: BoolArray, ok: BoolArray, shift: int = 0) -> IntArray:
    """Rows ``i`` with ``cond[i - shift]`` true that may fire."""
    idx = np.flatnonzero(cond) + shift
    return idx[ok[idx]]


def _cross(a: FloatArray, b: FloatArray, up: bool, ok: BoolArray) -> IntArray:
    """Rows where ``a`` crosses above (``up``) or below ``b``; NaN never crosses."""
    if up:
        return _rows((a[1:] > b[1:]) & (a[:-1] <= b[:-1]), ok, 1)
    return _rows((a[1:] < b[1:]) & (a[:-1] >= b[:-1]), ok, 1)


def _beyond(cols: Columns, idx: IntArray, d: int, price: FloatArray, level: FloatArray) -> _Hits:
    metric = safe_ratio(d * (price - level), _col(cols, _ATR)[idx])
    return _Hits(idx, np.full(idx.shape[0], d, np.int8), level, metric, np.clip(metric, 0.0, 1.0))


def _sign(spec: PatternSpec) -> int:
    return 1 if spec.direction == "bullish" else -1


def _ma_cross(spec: PatternSpec, cols: Columns, ok: BoolArray) -> _Hits | None:
    d = _sign(spec)
    slow = _col(cols, spec.requires[1])
    idx = _cross(_col(cols, spec.requires[0]), slow, d > 0, ok)
    if not idx.shape[0]:
        return None
    return _beyond(cols, idx, d, _col(cols, CLOSE)[idx], slow[idx])


def _price_cross(spec: PatternSpec, cols: Columns, ok: BoolArray) -> _Hits | None:
    d = _sign(spec)
    ma, close = _col(cols, spec.requires[0]), _col(cols, CLOSE)
    idx = _cross(close, ma, d > 0, ok)
    if not idx.shape[0]:
        return None
    return _beyond(cols, idx, d, close[idx], ma[idx])


def _breakout(spec: PatternSpec, cols: Columns, ok: BoolArray) -> _Hits | None:
    d = _sign(spec)
    ch, close = _col(cols, spec.requires[0]), _col(cols, CLOSE)
    # close[t] beyond ch[t-1] while close[t-1] was not beyond ch[t-2]
    a, b = close[2:], ch[1:-1]
    cond = (a > b) & (close[1:-1] <= ch[:-2]) if d > 0 else (a < b) & (close[1:-1] >= ch[:-2])
    idx = _rows(cond, ok, 2)
    if not idx.shape[0]:
        return None
    return _beyond(cols, idx, d, close[idx], ch[idx - 1])


def _volume_surge(spec: PatternSpec, cols: Columns, ok: BoolArray) -> _Hits | None:
    threshold = float(spec.param("threshold"))
    rv = _col(cols, spec.requires[0])
    idx = _rows(rv >= threshold, ok)
    if not idx.shape[0]:
        return None
    d = np.sign(_col(cols, CLOSE)[idx] - _col(cols, OPEN)[idx]).astype(np.int8)
    metric = rv[idx]
    level = np.full(idx.shape[0], np.nan)
    return _Hits(idx, d, level, metric, np.clip(metric / (2.0 * threshold), 0.0, 1.0))


def _rsi_zone(spec: PatternSpec, cols: Columns, ok: BoolArray) -> _Hits | None:
    level = float(spec.param("level"))
    r = _col(cols, spec.requires[0])
    up = not spec.param("down")
    cond = (r[1:] > level) & (r[:-1] <= level) if up else (r[1:] < level) & (r[:-1] >= level)
    idx = _rows(cond, ok, 1)
    if not idx.shape[0]:
        return None
    metric = r[idx]
    d = np.full(idx.shape[0], _sign(spec), np.int8)
    close = _col(cols, CLOSE)[idx]
    return _Hits(idx, d, close, metric, np.clip(np.abs(metric - level) / 5.0, 0.0, 1.0))


def _bb_squeeze(spec: PatternSpec, cols: Columns, ok: BoolArray) -> _Hits | None:
    width, low, high = (_col(cols, name) for name in spec.requires[:3])
    # The width reaches its lookback low (which includes the current bar) from above.
    idx = _rows((width[1:] <= low[1:]) & (width[:-1] > low[:-1]), ok, 1)
    if not idx.shape[0]:
        return None
    metric = safe_ratio(width[idx], high[idx])
    d = np.zeros(idx.shape[0], np.int8)
    return _Hits(idx, d, np.full(idx.shape[0], np.nan), metric, np.clip(1.0 - metric, 0.0, 1.0))


def _bb_break(spec: PatternSpec, cols: Columns, ok: BoolArray) -> _Hits | None:
    d = _sign(spec)
    band, close = _col(cols, spec.requires[0]), _col(cols, CLOSE)
    idx = _cross(close, band, d > 0, ok)
    if not idx.shape[0]:
        return None
    return _beyond(cols, idx, d, close[idx], band[idx])


def _gap(spec: PatternSpec, cols: Columns, ok: BoolArray) -> _Hits | None:
    d = _sign(spec)
    opens = _col(cols, OPEN)
    edge = _col(cols, HIGH if d > 0 else LOW)
    idx = _rows(opens[1:] > edge[:-1] if d > 0 else opens[1:] < edge[:-1], ok, 1)
    if not idx.shape[0]:
        return None
    return _beyond(cols, idx, d, opens[idx], edge[idx - 1])


DETECTORS: dict[str, Callable[[PatternSpec, Columns, BoolArray], _Hits | None]] = {
    "ma_cross": _ma_cross,
    "price_cross": _price_cross,
    "breakout": _breakout,
    "volume_surge": _volume_surge,
    "rsi_zone": _rsi_zone,
    "bb_squeeze": _bb_squeeze,
    "bb_break": _bb_break,
    "gap": _gap,
}


def detect(
    specs: tuple[PatternSpec, ...],
    offset: int,
    cols: Columns,
    pos: IntArray,
    reported: BoolArray | None = None,
) -> Found:
    """Detections of signal ``specs`` (``pattern`` numbered from ``offset``) on the frame rows
    with ``pos >= lag`` of each spec that are ``reported`` (all when ``None``)."""
    masks: dict[int, BoolArray] = {}
    numbers: list[int] = []
    parts: list[_Hits] = []
    for k, spec in enumerate(specs):
        ok = masks.get(spec.lag)
        if ok is None:
            ok = masks[spec.lag] = pos >= spec.lag if reported is None else (pos >= spec.lag) & reported
        hits = DETECTORS[spec.kind](spec, cols, ok)
        if hits is not None:
            numbers.append(offset + k)
            parts.append(hits)
    if not parts:
        return EMPTY
    idx = np.concatenate([h.index for h in parts]).astype(np.int64, copy=False)
    return Found(  # one column at a time over all patterns: fewer, larger numpy operations
        pattern=np.repeat(np.array(numbers, dtype=np.int64), [h.index.shape[0] for h in parts]),
        index=idx,
        direction=np.concatenate([h.direction for h in parts]).astype(np.int8, copy=False),
        strength=np.concatenate([h.strength for h in parts]),
        metric=np.concatenate([h.metric for h in parts]),
        level=np.concatenate([h.level for h in parts]),
        high=_col(cols, HIGH)[idx],
        low=_col(cols, LOW)[idx],
    )
