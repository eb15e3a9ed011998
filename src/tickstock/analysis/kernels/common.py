"""Small array helpers shared by kernels and pattern detectors.

Every formula that both engines evaluate is written once, with ``+ - * /`` and comparisons
only, so it gives the same IEEE-754 result on numpy arrays (batch) and on Python floats
(incremental): those operations are correctly rounded either way, whereas transcendental
functions may differ between numpy's vectorised loops and ``math``.
"""

from __future__ import annotations

import numpy as np

from tickstock.analysis.bars import FloatArray


def prev(x: FloatArray, k: int = 1) -> FloatArray:
    """``x`` shifted ``k`` bars later: ``prev(x)[i] == x[i - k]``, NaN before the start."""
    out = np.empty(x.shape[0], dtype=np.float64)
    out[:k] = np.nan
    out[k:] = x[: x.shape[0] - k]
    return out


def nan_array(n: int) -> FloatArray:
    return np.full(n, np.nan, dtype=np.float64)


def safe_ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    """``num / den`` where ``den > 0``, NaN elsewhere (no warning on a zero denominator)."""
    out = nan_array(num.shape[0])
    np.divide(num, den, out=out, where=den > 0)
    return out


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
