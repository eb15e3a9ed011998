"""Pivot points from the previous period's high ``H``, low ``L`` and close ``C``.

The period is the previous session when the caller gives ``session`` (intraday bars: the
levels of the whole session come from the one before it), else the previous bar (daily bars:
tomorrow's levels from today's bar). NaN until a previous period exists.

Classic (floor-trader) pivots::

    P  = (H + L + C) / 3
    R1 = 2P - L          S1 = 2P - H
    R2 = P + (H - L)     S2 = P - (H - L)
    R3 = H + 2(P - L)    S3 = L - 2(H - P)

Fibonacci pivots (same P)::

    R1, S1 = P +/- 0.382 (H - L)    R2, S2 = P +/- 0.618 (H - L)    R3, S3 = P +/- (H - L)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np

from tickstock.analysis.bars import CLOSE, HIGH, LOW, SESSION, FloatArray
from tickstock.analysis.kernels.common import prev, segments
from tickstock.analysis.kernels.compiled import jit
from tickstock.analysis.spec import Columns, Row

OUTPUTS = ("p", "r1", "s1", "r2", "s2", "r3", "s3")
Method = Literal["classic", "fib"]
F = TypeVar("F", float, FloatArray)


def classic(h: F, lo: F, c: F) -> tuple[F, ...]:
    """Classic pivots (works on floats and on arrays alike)."""
    p = (h + lo + c) / 3.0
    rng = h - lo
    return (p, 2.0 * p - lo, 2.0 * p - h, p + rng, p - rng, h + 2.0 * (p - lo), lo - 2.0 * (h - p))


def fibonacci(h: F, lo: F, c: F) -> tuple[F, ...]:
    """Fibonacci pivots (works on floats and on arrays alike)."""
    p = (h + lo + c) / 3.0
    rng = h - lo
    return (p, p + 0.382 * rng, p - 0.382 * rng, p + 0.618 * rng, p - 0.618 * rng, p + rng, p - rng)


# The same formulas compiled, for the batch rows (the stream calls the Python ones on floats:
# ``+ - * /`` round the same either way).
_classic_c, _fibonacci_c = jit(classic), jit(fibonacci)


@jit
def _rows(h: FloatArray, lo: FloatArray, c: FloatArray, shift: bool, fib: bool) -> FloatArray:
    """``[output, row]``: the pivots of row ``i`` from ``h, lo, c`` of row ``i - 1`` (``shift``;
    NaN for the first row) or of row ``i``. One pass, no temporaries."""
    n = c.shape[0]
    out = np.empty((len(OUTPUTS), n), dtype=np.float64)
    for i in range(n):
        j = i - 1 if shift else i
        if j < 0:
            out[:, i] = math.nan
            continue
        values = _fibonacci_c(h[j], lo[j], c[j]) if fib else _classic_c(h[j], lo[j], c[j])
        for k in range(len(OUTPUTS)):
            out[k, i] = values[k]
    return out


def _previous_period(cols: Columns) -> tuple[FloatArray, FloatArray, FloatArray, bool]:
    """High, low and close of each row's previous period, or (daily: no ``session``) the
    rows' own with ``True``: shift them by one row."""
    high = np.ascontiguousarray(cols[HIGH], dtype=np.float64)
    low = np.ascontiguousarray(cols[LOW], dtype=np.float64)
    close = np.ascontiguousarray(cols[CLOSE], dtype=np.float64)
    session = cols.get(SESSION)
    if session is None:
        return high, low, close, True
    starts, ends = segments(np.asarray(session))
    if starts.shape[0] == 0:
        return high, low, close, False
    lengths = ends - starts
    period_h = prev(np.maximum.reduceat(high, starts))
    period_l = prev(np.minimum.reduceat(low, starts))
    period_c = prev(close[ends - 1])
    return np.repeat(period_h, lengths), np.repeat(period_l, lengths), np.repeat(period_c, lengths), False


@dataclass(frozen=True)
class PivotKernel:
    method: Method

    def formula(self, h: F, lo: F, c: F) -> tuple[F, ...]:
        return classic(h, lo, c) if self.method == "classic" else fibonacci(h, lo, c)

    def batch(self, cols: Columns) -> tuple[FloatArray, ...]:
        h, lo, c, shift = _previous_period(cols)
        return tuple(_rows(h, lo, c, shift, self.method == "fib"))

    def stream(self) -> PivotStream:
        return PivotStream(self)


_NAN3 = (math.nan, math.nan, math.nan)


class PivotStream:
    """The previous period's and the current period's running H, L, C."""

    __slots__ = ("_current", "_kernel", "_previous", "_session")

    def __init__(self, kernel: PivotKernel) -> None:
        self._kernel = kernel
        self._session: float | None = None
        self._current: tuple[float, float, float] | None = None
        self._previous = _NAN3

    def _step(self, row: Row) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """(previous period HLC for this bar, current period HLC after it)."""
        h, lo, c = row[HIGH], row[LOW], row[CLOSE]
        session = row.get(SESSION)
        current = self._current
        if current is None:
            return self._previous, (h, lo, c)
        if session is None or session != self._session:
            return current, (h, lo, c)
        return self._previous, (max(current[0], h), min(current[1], lo), c)

    def warm_up(self, history: Columns) -> None:
        self._session, self._current, self._previous = None, None, _NAN3
        n = len(history[CLOSE])
        if n == 0:
            return
        session = history.get(SESSION)
        first = 0
        if session is None:
            first = n - 1
        else:
            starts, _ = segments(np.asarray(session))
            first = int(starts[-2]) if starts.shape[0] > 1 else 0
        for i in range(first, n):
            row = {name: float(history[name][i]) for name in (HIGH, LOW, CLOSE)}
            if session is not None:
                row[SESSION] = session[i]
            self.update(row)

    def update(self, row: Row) -> tuple[float, ...]:
        previous, current = self._step(row)
        self._previous, self._current, self._session = previous, current, row.get(SESSION)
        return self._kernel.formula(*previous)

    def peek(self, row: Row) -> tuple[float, ...]:
        return self._kernel.formula(*self._step(row)[0])
