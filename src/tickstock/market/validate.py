"""Validation of parsed bars: refuse bad rows with a reason, keep the good ones.

Each refused row becomes a ``RowIssue`` naming the row and why; the rest of the symbol goes
on. Checks, in order of precedence for a row that breaks several:

1. a price or the volume is missing, non-numeric or infinite
2. a price is zero or negative
3. high < low
4. open or close outside [low, high]
5. negative volume
6. timestamp repeats an earlier row (the first one is kept)
7. timestamp earlier than a previous row (out of order)

A file sorted newest-first is a layout, not a flaw: it is reversed before the checks.
All checks are vectorised; Python loops only over the refused rows to word the reasons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tickstock.market.bars import BarFrame, RowIssue, ns_to_datetime

_FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class _Checks:
    finite: dict[str, npt.NDArray[np.bool_]]
    missing: npt.NDArray[np.bool_]
    nonpositive: npt.NDArray[np.bool_]
    inverted: npt.NDArray[np.bool_]
    outside: npt.NDArray[np.bool_]
    negative_volume: npt.NDArray[np.bool_]
    duplicate: npt.NDArray[np.bool_]
    backwards: npt.NDArray[np.bool_]

    @property
    def bad(self) -> npt.NDArray[np.bool_]:
        result: npt.NDArray[np.bool_] = (
            self.missing | self.nonpositive | self.inverted | self.outside
            | self.negative_volume | self.duplicate | self.backwards
        )
        return result


def validate(
    frame: BarFrame, rows: npt.NDArray[np.int64] | None = None
) -> tuple[BarFrame, list[RowIssue]]:
    """Split ``frame`` into the valid bars and the issues of the refused rows.

    ``rows`` gives each bar's source row number for the report (default: 1-based position).
    """
    n = len(frame)
    if rows is None:
        rows = np.arange(1, n + 1, dtype=np.int64)
    if n > 1 and bool(np.all(np.diff(frame.ts) < 0)):
        frame, rows = frame.take(slice(None, None, -1)), rows[::-1]
    checks = _check(frame)
    bad = checks.bad
    if not bad.any():
        return frame, []
    issues: list[RowIssue] = []
    first_row_of: dict[int, int] = {}
    for i in range(n):
        t = int(frame.ts[i])
        if not bad[i]:
            first_row_of.setdefault(t, int(rows[i]))
            continue
        reason = _reason(frame, checks, i, kept_row=first_row_of.get(t), rows=rows, bad=bad)
        issues.append(RowIssue(frame.symbol, reason, frame.timeframe.value, int(rows[i]),
                               ns_to_datetime(t)))
    return frame.take(~bad), issues


def _check(frame: BarFrame) -> _Checks:
    n = len(frame)
    finite = {name: np.isfinite(getattr(frame, name)) for name in _FIELDS}
    missing = ~np.logical_and.reduce(list(finite.values()))
    with np.errstate(invalid="ignore"):
        nonpositive = ~missing & (
            (frame.open <= 0) | (frame.high <= 0) | (frame.low <= 0) | (frame.close <= 0)
        )
        inverted = ~missing & (frame.high < frame.low)
        outside = ~missing & (
            (frame.open > frame.high) | (frame.open < frame.low)
            | (frame.close > frame.high) | (frame.close < frame.low)
        )
        negative_volume = ~missing & (frame.volume < 0)
    field_bad = missing | nonpositive | inverted | outside | negative_volume
    # order checks among rows that are otherwise valid, so a refused row never shadows a good one
    keep = np.flatnonzero(~field_bad)
    duplicate = np.zeros(n, dtype=bool)
    backwards = np.zeros(n, dtype=bool)
    if keep.size:
        sub = frame.ts[keep]
        previous_max = np.concatenate(
            [[np.iinfo(np.int64).min], np.maximum.accumulate(sub)[:-1]]
        )
        duplicate[keep] = sub == previous_max
        backwards[keep] = sub < previous_max
    return _Checks(finite, missing, nonpositive, inverted, outside, negative_volume, duplicate,
                   backwards)


def _reason(
    frame: BarFrame,
    checks: _Checks,
    i: int,
    *,
    kept_row: int | None,
    rows: npt.NDArray[np.int64],
    bad: npt.NDArray[np.bool_],
) -> str:
    o, h, lo, c, v = (frame.open[i], frame.high[i], frame.low[i], frame.close[i], frame.volume[i])
    worded: tuple[tuple[npt.NDArray[np.bool_], Callable[[], str]], ...] = (
        (checks.missing, lambda: "missing or non-numeric "
         + ", ".join(name for name in _FIELDS if not checks.finite[name][i])),
        (checks.nonpositive, lambda: "price zero or negative"),
        (checks.inverted, lambda: f"high {h:g} < low {lo:g}"),
        (checks.outside, lambda: f"open {o:g} / close {c:g} outside low..high {lo:g}..{h:g}"),
        (checks.negative_volume, lambda: f"negative volume {v:g}"),
    )
    for mask, word in worded:
        if mask[i]:
            return word()
    if checks.duplicate[i] or kept_row is not None:
        return "duplicate timestamp" + (f" (row {kept_row} kept)" if kept_row else "")
    earlier = np.flatnonzero(~bad[:i])
    ref = int(rows[earlier[np.argmax(frame.ts[earlier])]]) if earlier.size else 0
    return f"out of order (earlier than row {ref})"
