"""Compiled detectors of the signal patterns specified in ``tickstock.analysis.patterns.signals``.

Each spec becomes one instruction (its kind, which way, its lag and the columns it reads); one
compiled pass per frame runs every instruction over the frame's rows. A row may fire only if
it has the ``lag`` earlier rows of its own segment and is reported, so a frame of many symbols
gives each one exactly its own answer. What each kind measures (``metric``) and how that
becomes ``strength`` is tabled in the ``signals`` module docstring; the formulas are the
vectorised numpy ones this replaced, operation for operation (equal to the last bit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tickstock.analysis.bars import CLOSE, HIGH, LOW, OPEN, FloatArray
from tickstock.analysis.kernels.compiled import jit
from tickstock.analysis.patterns.found import EMPTY, Found
from tickstock.analysis.patterns.scoring import SCORING_COLUMNS
from tickstock.analysis.spec import Columns, PatternSpec

IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
_ATR = SCORING_COLUMNS[2]

# Instruction kinds. Columns a, b, c per kind (the kernel's reading of them):
CROSS = 0  # a crosses b (above when up, else below); price c, level b
BREAKOUT = 1  # a beyond the previous bar's b while the bar before was not; price a, level b[t-1]
GAP = 2  # a beyond the previous bar's b; price a, level b[t-1]
SURGE = 3  # a >= param; direction the sign of b - c
RSI = 4  # a crosses param (up / down); level c
SQUEEZE = 5  # a falls to b; metric a / c
#: The kernel's fixed columns, before those of the instructions.
FIXED = (_ATR, HIGH, LOW)


def _sign(spec: PatternSpec) -> int:
    return 1 if spec.direction == "bullish" else -1


def _instruction(spec: PatternSpec) -> tuple[int, bool, int, tuple[str, str, str], float]:  # noqa: PLR0911
    """(kind, up, direction, columns a b c, parameter) of one signal spec."""
    d, req = _sign(spec), spec.requires
    match spec.kind:
        case "ma_cross":
            return CROSS, d > 0, d, (req[0], req[1], CLOSE), 0.0
        case "price_cross" | "bb_break":
            return CROSS, d > 0, d, (CLOSE, req[0], CLOSE), 0.0
        case "breakout":
            return BREAKOUT, d > 0, d, (CLOSE, req[0], CLOSE), 0.0
        case "gap":
            return GAP, d > 0, d, (OPEN, HIGH if d > 0 else LOW, OPEN), 0.0
        case "volume_surge":
            return SURGE, True, 0, (req[0], CLOSE, OPEN), float(spec.param("threshold"))
        case "rsi_zone":
            up = not spec.param("down")
            return RSI, up, d, (req[0], CLOSE, CLOSE), float(spec.param("level"))
        case "bb_squeeze":
            return SQUEEZE, False, 0, (req[0], req[1], req[2]), 0.0
    raise ValueError(f"no detector for signal kind {spec.kind!r}")


@dataclass(frozen=True)
class Program:
    """Signal specs compiled to instructions: ``table[k]`` = kind, up, direction, lag and the
    positions of columns a, b, c in ``columns``; ``params[k]`` the threshold or level."""

    columns: tuple[str, ...]
    table: IntArray
    params: FloatArray


@lru_cache(maxsize=64)
def program(specs: tuple[PatternSpec, ...]) -> Program:
    columns = list(FIXED)
    rows, params = [], []
    for spec in specs:
        kind, up, d, names, param = _instruction(spec)
        where = []
        for name in names:
            if name not in columns:
                columns.append(name)
            where.append(columns.index(name))
        rows.append([kind, int(up), d, spec.lag, *where])
        params.append(param)
    table = np.array(rows, dtype=np.int64).reshape(len(rows), 7)
    return Program(tuple(columns), table, np.array(params, dtype=np.float64))


@jit
def _clip01(v: float) -> float:
    """``np.clip(v, 0.0, 1.0)``: NaN stays NaN."""
    if math.isnan(v):
        return v
    r = v if v > 0.0 else 0.0
    return r if r < 1.0 else 1.0


@jit
def _ratio(num: float, den: float) -> float:
    """``safe_ratio``: ``num / den`` where ``den > 0``, else NaN."""
    return num / den if den > 0 else math.nan


# One loop per kind and way (no branch on them per row); each writes the rows where it fires
# and may (``ok``) to ``hits`` and returns their number.


@jit
def _cross(a: FloatArray, b: FloatArray, up: bool, ok: BoolArray, hits: IntArray) -> int:
    m = 0
    if up:
        for i in range(1, ok.shape[0]):
            if a[i] > b[i] and a[i - 1] <= b[i - 1] and ok[i]:
                hits[m], m = i, m + 1
    else:
        for i in range(1, ok.shape[0]):
            if a[i] < b[i] and a[i - 1] >= b[i - 1] and ok[i]:
                hits[m], m = i, m + 1
    return m


@jit
def _falls_to(a: FloatArray, b: FloatArray, ok: BoolArray, hits: IntArray) -> int:
    m = 0
    for i in range(1, ok.shape[0]):
        if a[i] <= b[i] and a[i - 1] > b[i - 1] and ok[i]:
            hits[m], m = i, m + 1
    return m


@jit
def _breakout(a: FloatArray, b: FloatArray, up: bool, ok: BoolArray, hits: IntArray) -> int:
    m = 0
    if up:
        for i in range(2, ok.shape[0]):
            if a[i] > b[i - 1] and a[i - 1] <= b[i - 2] and ok[i]:
                hits[m], m = i, m + 1
    else:
        for i in range(2, ok.shape[0]):
            if a[i] < b[i - 1] and a[i - 1] >= b[i - 2] and ok[i]:
                hits[m], m = i, m + 1
    return m


@jit
def _gap(a: FloatArray, b: FloatArray, up: bool, ok: BoolArray, hits: IntArray) -> int:
    m = 0
    if up:
        for i in range(1, ok.shape[0]):
            if a[i] > b[i - 1] and ok[i]:
                hits[m], m = i, m + 1
    else:
        for i in range(1, ok.shape[0]):
            if a[i] < b[i - 1] and ok[i]:
                hits[m], m = i, m + 1
    return m


@jit
def _level_cross(a: FloatArray, level: float, up: bool, ok: BoolArray, hits: IntArray) -> int:
    m = 0
    if up:
        for i in range(1, ok.shape[0]):
            if a[i] > level and a[i - 1] <= level and ok[i]:
                hits[m], m = i, m + 1
    else:
        for i in range(1, ok.shape[0]):
            if a[i] < level and a[i - 1] >= level and ok[i]:
                hits[m], m = i, m + 1
    return m


@jit
def _at_least(a: FloatArray, threshold: float, ok: BoolArray, hits: IntArray) -> int:
    m = 0
    for i in range(ok.shape[0]):
        if a[i] >= threshold and ok[i]:
            hits[m], m = i, m + 1
    return m


@jit
def _scan(  # noqa: PLR0917
    kind: int, up: bool, a: FloatArray, b: FloatArray, param: float, ok: BoolArray, hits: IntArray
) -> int:
    if kind == CROSS:
        return _cross(a, b, up, ok, hits)
    if kind == BREAKOUT:
        return _breakout(a, b, up, ok, hits)
    if kind == GAP:
        return _gap(a, b, up, ok, hits)
    if kind == SURGE:
        return _at_least(a, param, ok, hits)
    if kind == RSI:
        return _level_cross(a, param, up, ok, hits)
    return _falls_to(a, b, ok, hits)  # SQUEEZE


@jit
def _grow(arr: Any, size: int) -> Any:
    out = np.empty(max(size, 2 * arr.shape[0]), dtype=arr.dtype)
    out[: arr.shape[0]] = arr
    return out


@jit
def _run(  # noqa: PLR0917 -- one pass over every instruction
    cols: tuple[FloatArray, ...],
    table: IntArray,
    params: FloatArray,
    pos: IntArray,
    reported: BoolArray,
    first: int,
) -> tuple[IntArray, IntArray, NDArray[np.int8], FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    rows = pos.shape[0]
    atr, high, low = cols[0], cols[1], cols[2]
    all_rows = reported.shape[0] == 0
    hits = np.empty(rows, dtype=np.int64)
    ok = np.empty(rows, dtype=np.bool_)
    lag_of_ok = -1
    cap = 256
    pattern, index = np.empty(cap, dtype=np.int64), np.empty(cap, dtype=np.int64)
    direction = np.empty(cap, dtype=np.int8)
    strength, metric, level = np.empty(cap), np.empty(cap), np.empty(cap)
    n = 0
    for k in range(table.shape[0]):
        kind, up, d, lag = table[k, 0], table[k, 1] != 0, table[k, 2], table[k, 3]
        a, b, c = cols[table[k, 4]], cols[table[k, 5]], cols[table[k, 6]]
        param = params[k]
        if lag != lag_of_ok:  # rows that may fire: their segment has ``lag`` earlier rows
            for i in range(rows):
                ok[i] = pos[i] >= lag and (all_rows or reported[i])
            lag_of_ok = lag
        m = _scan(kind, up, a, b, param, ok, hits)
        if n + m > cap:
            cap = max(n + m, 2 * cap)
            pattern, index, direction = _grow(pattern, cap), _grow(index, cap), _grow(direction, cap)
            strength, metric, level = _grow(strength, cap), _grow(metric, cap), _grow(level, cap)
        for t in range(m):
            i = hits[t]
            dd, lv, mt = d, math.nan, math.nan
            if kind <= GAP:  # CROSS, BREAKOUT, GAP: how far beyond the level, in ATRs
                price = c[i] if kind == CROSS else a[i]
                lv = b[i] if kind == CROSS else b[i - 1]
                mt = _ratio(d * (price - lv), atr[i])
                st = _clip01(mt)
            elif kind == SURGE:
                diff = b[i] - c[i]
                dd = 1 if diff > 0 else (-1 if diff < 0 else 0)
                mt = a[i]
                st = _clip01(mt / (2.0 * param))
            elif kind == RSI:
                mt, lv = a[i], c[i]
                st = _clip01(abs(mt - param) / 5.0)
            else:  # SQUEEZE
                mt = _ratio(a[i], c[i])
                st = _clip01(1.0 - mt)
            pattern[n], index[n], direction[n] = first + k, i, dd
            strength[n], metric[n], level[n] = st, mt, lv
            n += 1
    idx = index[:n].copy()
    return (
        pattern[:n].copy(), idx, direction[:n].copy(), strength[:n].copy(), metric[:n].copy(),
        level[:n].copy(), high[idx], low[idx],
    )  # fmt: skip


_ALL_ROWS = np.zeros(0, dtype=np.bool_)


def _read_only(values: object) -> FloatArray:
    """A contiguous float64 read-only view (a copy only if needed): the kernel's column tuple
    must be of one type, and a caller's column may be read-only (pandas hands those out)."""
    arr = np.ascontiguousarray(values, dtype=np.float64).view()
    arr.flags.writeable = False
    return arr


def detect(
    specs: tuple[PatternSpec, ...],
    offset: int,
    cols: Columns,
    pos: IntArray,
    reported: BoolArray | None = None,
    *,
    compiled: Program | None = None,
) -> Found:
    """Detections of signal ``specs`` (``pattern`` numbered from ``offset``) on the frame rows
    with ``pos >= lag`` of each spec that are ``reported`` (all when ``None``): one run per
    pattern in pattern order, each by row. ``compiled``: ``program(specs)`` if the caller
    keeps it (looking it up hashes every spec)."""
    if not specs:
        return EMPTY
    prog = compiled or program(specs)
    arrays = tuple(_read_only(cols[name]) for name in prog.columns)
    found = Found(
        *_run(
            arrays,
            prog.table,
            prog.params,
            np.ascontiguousarray(pos, dtype=np.int64),
            _ALL_ROWS if reported is None else np.ascontiguousarray(reported, dtype=np.bool_),
            offset,
        )
    )
    return found if len(found) else EMPTY
