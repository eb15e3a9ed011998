"""Session VWAP with 1 and 2 standard-deviation bands, reset at each session start.

For the bars of a session so far, with typical price ``p = (high + low + close) / 3`` and
weights ``w = volume``::

    mid   = sum(w * p) / sum(w)
    sigma = sqrt(max(sum(w * p * p) / sum(w) - mid * mid, 0))
    upper1, lower1 = mid +/- sigma        upper2, lower2 = mid +/- 2 * sigma

Zero volume (an index such as the S&P 500 reports none, and a thinly traded stock's first
minutes may have none): while the session's cumulative volume is 0, every bar weighs 1, so
the line is the session's running mean typical price (a TWAP) instead of undefined; from the
first bar with volume on, volume weights apply. Without a ``session`` input (daily bars) the
outputs are NaN: a session VWAP needs sessions.

Sums are running sums in bar order (``numpy.cumsum`` is a sequential sum), so the batch and
incremental answers are the same floating-point numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tickstock.analysis.bars import CLOSE, HIGH, LOW, SESSION, VOLUME, FloatArray
from tickstock.analysis.kernels.common import segments
from tickstock.analysis.spec import Columns, Row

OUTPUTS = ("mid", "upper1", "lower1", "upper2", "lower2")
INPUTS = (HIGH, LOW, CLOSE, VOLUME, SESSION)


def _bands(mid: FloatArray, var: FloatArray) -> tuple[FloatArray, ...]:
    sd = np.sqrt(np.where(var > 0, var, 0.0))
    return mid, mid + sd, mid - sd, mid + 2.0 * sd, mid - 2.0 * sd


def _session_batch(p: FloatArray, v: FloatArray) -> tuple[FloatArray, FloatArray]:
    sw = np.cumsum(v)
    swp = np.cumsum(v * p)
    swpp = np.cumsum(v * p * p)
    count = np.arange(1, p.shape[0] + 1, dtype=np.float64)
    sp = np.cumsum(p)
    spp = np.cumsum(p * p)
    weighted = sw > 0
    den = np.where(weighted, sw, count)
    mid = np.where(weighted, swp, sp) / den
    var = np.where(weighted, swpp, spp) / den - mid * mid
    return mid, var


@dataclass(frozen=True)
class VwapKernel:
    def batch(self, cols: Columns) -> tuple[FloatArray, ...]:
        close = np.asarray(cols[CLOSE], dtype=np.float64)
        n = close.shape[0]
        session = cols.get(SESSION)
        if session is None:
            nan = np.full(n, np.nan)  # one read-only column for every output
            nan.flags.writeable = False
            return (nan,) * len(OUTPUTS)
        high = np.asarray(cols[HIGH], dtype=np.float64)
        p = (high + np.asarray(cols[LOW], dtype=np.float64) + close) / 3.0
        v = np.asarray(cols[VOLUME], dtype=np.float64)
        mid = np.empty(n)
        var = np.empty(n)
        starts, ends = segments(np.asarray(session))
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            mid[s:e], var[s:e] = _session_batch(p[s:e], v[s:e])
        return _bands(mid, var)

    def stream(self) -> VwapStream:
        return VwapStream()


class VwapStream:
    """Running sums of the current session."""

    __slots__ = ("_session", "_sums")

    def __init__(self) -> None:
        self._session: float | None = None
        self._sums: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

    def _step(self, row: Row) -> tuple[tuple[float, ...], tuple[float, ...]]:
        session = row.get(SESSION)
        if session is None:
            return self._sums, (math.nan,) * len(OUTPUTS)
        p = (row[HIGH] + row[LOW] + row[CLOSE]) / 3.0
        v = row[VOLUME]
        sw, swp, swpp, count, sp, spp = (
            self._sums if session == self._session else (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        )
        sums = (sw + v, swp + v * p, swpp + v * p * p, count + 1.0, sp + p, spp + p * p)
        sw, swp, swpp, count, sp, spp = sums
        if sw > 0:
            mid = swp / sw
            var = swpp / sw - mid * mid
        else:
            mid = sp / count
            var = spp / count - mid * mid
        sd = math.sqrt(var if var > 0 else 0.0)
        return sums, (mid, mid + sd, mid - sd, mid + 2.0 * sd, mid - 2.0 * sd)

    def warm_up(self, history: Columns) -> None:
        self._session, self._sums = None, (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        session = history.get(SESSION)
        if session is None or len(session) == 0:
            return
        # Only the current (last) session's bars carry state.
        starts, _ = segments(np.asarray(session))
        first = int(starts[-1])
        cols = [np.asarray(history[name])[first:].tolist() for name in INPUTS]
        for values in zip(*cols, strict=True):
            self.update(dict(zip(INPUTS, values, strict=True)))

    def update(self, row: Row) -> tuple[float, ...]:
        self._sums, out = self._step(row)
        self._session = row.get(SESSION)
        return out

    def peek(self, row: Row) -> tuple[float, ...]:
        return self._step(row)[1]

    @staticmethod
    def update_many(streams: Sequence[VwapStream], cols: Columns) -> tuple[FloatArray, ...]:
        """``update`` of ``streams[i]`` (none twice) with row ``i`` of ``cols``: the same
        operations in the same order on columns, so the same numbers."""
        n = len(streams)
        session = cols.get(SESSION)
        if session is None:
            for s in streams:
                s._session = None
            return (np.full(n, np.nan),) * len(OUTPUTS)
        sessions = np.asarray(session).tolist()
        zero = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        sums = np.array([s._sums if s._session == k else zero
                         for s, k in zip(streams, sessions, strict=True)], dtype=np.float64).reshape(n, 6)
        p = (np.asarray(cols[HIGH], dtype=np.float64) + np.asarray(cols[LOW], dtype=np.float64)
             + np.asarray(cols[CLOSE], dtype=np.float64)) / 3.0
        v = np.asarray(cols[VOLUME], dtype=np.float64)
        sw, swp, swpp = sums[:, 0] + v, sums[:, 1] + v * p, sums[:, 2] + v * p * p
        count, sp, spp = sums[:, 3] + 1.0, sums[:, 4] + p, sums[:, 5] + p * p
        weighted = sw > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            mid = np.where(weighted, swp / sw, sp / count)
            var = np.where(weighted, swpp / sw - mid * mid, spp / count - mid * mid)
        new = np.column_stack((sw, swp, swpp, count, sp, spp)).tolist()
        for s, row, k in zip(streams, new, sessions, strict=True):
            s._sums, s._session = tuple(row), k
        return _bands(mid, var)
