"""Small array helpers shared by kernels and pattern detectors.

Every formula that both engines evaluate is written once, with ``+ - * /`` and comparisons
only, so it gives the same IEEE-754 result on numpy arrays (batch) and on Python floats
(incremental): those operations are correctly rounded either way, whereas transcendental
functions may differ between numpy's vectorised loops and ``math``.
"""

from __future__ import annotations

import math

import numpy as np

from tickstock.analysis.bars import FloatArray
from tickstock.analysis.kernels.compiled import jit


def prev(x: FloatArray, k: int = 1) -> FloatArray:
    """``x`` shifted ``k`` bars later: ``prev(x)[i] == x[i - k]``, NaN before the start."""
    out = np.empty(x.shape[0], dtype=np.float64)
    out[:k] = np.nan
    out[k:] = x[: x.shape[0] - k]
    return out


def nan_array(n: int) -> FloatArray:
    return np.full(n, np.nan, dtype=np.float64)


@jit
def _ratio(num: FloatArray, den: FloatArray, lag: int, minus: float) -> FloatArray:
    """``num[i] / den[i - lag] - minus`` where that denominator exists and is > 0, else NaN:
    one compiled pass (``x - 0.0`` is ``x``, so ``minus=0`` is the plain ratio)."""
    n = num.shape[0]
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        d = den[i - lag] if i >= lag else math.nan
        out[i] = num[i] / d - minus if d > 0 else math.nan
    return out


def safe_ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    """``num / den`` where ``den > 0``, NaN elsewhere (no warning on a zero denominator)."""
    return _ratio(num, den, 0, 0.0)


def ratio_to_previous(num: FloatArray, den: FloatArray) -> FloatArray:
    """``safe_ratio(num, prev(den))``: each value over the previous row's denominator."""
    return _ratio(num, den, 1, 0.0)


def distance(price: FloatArray, level: FloatArray) -> FloatArray:
    """``safe_ratio(price, level) - 1``: the fractional distance of ``price`` from ``level``."""
    return _ratio(price, level, 0, 1.0)


def safe_ratio1(num: float, den: float) -> float:
    """Scalar twin of ``safe_ratio``."""
    return num / den if den > 0 else float("nan")


def segments(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end indices of the runs of equal consecutive ``keys``."""
    n = keys.shape[0]
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    starts = np.concatenate(([0], np.flatnonzero(keys[1:] != keys[:-1]) + 1))
    ends = np.concatenate((starts[1:], [n]))
    return starts.astype(np.int64), ends.astype(np.int64)
