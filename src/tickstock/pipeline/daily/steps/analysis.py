"""Indicators and patterns of a batch, for the bars after each symbol's watermark.

Per timeframe, for the whole batch at once: read the watermarks, read every symbol's tail in
one query (``tails.read_tails``), compute with the analysis batch engine, write the results of
the new bars in one COPY and move the watermarks in the same transaction.

Intraday timeframes read what the live stream gives the incremental engine (``intraday``): each
bar's session (session VWAP, time-of-day relative volume) and that session's daily trend (so
intraday detections record whether the daily trend agrees).

How much history: a symbol never computed gets its whole history (results equal the engine's
batch computation over it, exactly). Afterwards it gets its bars after the watermark and, before
them, the plan's warm-up but at least ``SETTLE`` bars (a trading year):

- windowed indicators (SMA, Bollinger, channels, ...) are exact on them, and so is where and
  which way every pattern fires;
- the EMAs and OBV, whose tail value differs from the whole-history one by the tail's seed
  (an EMA's by a difference shrinking by ``1 - 2 / (period + 1)`` a bar, OBV's by a constant),
  are continued from their stored value at the watermark: that difference is measured there and
  taken off (``_continue``), which is exact up to rounding;
- the other recursive ones (RSI, ATR, ADX: 14-bar Wilder smoothing; MACD: 12/26/9 EMAs) keep
  ~1e-8 of their seed difference after ``SETTLE`` bars.

Patterns are computed on the new bars only (``batch.compute_recent``), their confidences within
~1e-8 of the whole-history ones (the ATR and RSI they read have settled that far).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from psycopg_pool import ConnectionPool

from tickstock.analysis.bars import Bars
from tickstock.analysis.batch import compute_recent
from tickstock.analysis.plan import Plan, plan
from tickstock.analysis.registry import DEFAULT_INDICATORS, DEFAULT_PATTERNS
from tickstock.analysis.results import Result
from tickstock.analysis.spec import Spec
from tickstock.core.errors import DataValidationError
from tickstock.market.bars import INTRADAY_MINUTES
from tickstock.market.calendar import MarketCalendar
from tickstock.pipeline.daily.model import BatchOutcome, BatchWork
from tickstock.pipeline.daily.steps import intraday as context
from tickstock.pipeline.daily.steps import tails as io

log = logging.getLogger(__name__)

Kind = Literal["indicators", "patterns"]
_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)
#: Bars before the watermark a symbol's tail has at least (module docstring)
SETTLE = 250
_INTRADAY = frozenset(tf.value for tf in INTRADAY_MINUTES)


class AnalysisStep:
    """The indicators phase (``kind="indicators"``) or the patterns phase."""

    def __init__(self, pool: ConnectionPool, kind: Kind, *, specs: Sequence[Spec] | None = None,
                 calendar: MarketCalendar | None = None) -> None:
        self.pool = pool
        self.kind = kind
        #: With a calendar, intraday bars get their session and daily trend (``intraday``).
        self.calendar = calendar
        default = DEFAULT_INDICATORS if kind == "indicators" else DEFAULT_PATTERNS
        self.specs: tuple[Spec, ...] = tuple(specs if specs is not None else default)
        self._plans: dict[tuple[str, ...], tuple[tuple[Spec, ...], Plan]] = {}

    @property
    def outputs(self) -> int:
        """Indicator columns (or patterns) one symbol gets per bar: the unit of the counters."""
        p = plan(self.specs)
        return len(p.columns) if self.kind == "indicators" else len(p.patterns)

    def setup(self, run: Any, symbols: Sequence[str]) -> dict[str, int]:
        """Run totals at phase start (``indicators_total``)."""
        if self.kind != "indicators":
            return {}
        return {"indicators_total": len(symbols) * self.outputs * len(run.timeframes)}

    def _plan(self, only: Sequence[str]) -> tuple[tuple[Spec, ...], Plan]:
        key = tuple(only)
        if key not in self._plans:
            chosen = tuple(s for s in self.specs if not only or s.name in set(only))
            self._plans[key] = (chosen, plan(chosen))
        return self._plans[key]

    def __call__(self, work: BatchWork) -> BatchOutcome:
        only = work.options.get(self.kind) or ()
        specs, p = self._plan(only)
        failed: set[str] = set()
        written = 0
        for timeframe in work.timeframes:
            failures, rows = self._timeframe(work.symbols, timeframe, specs, p)
            failed |= set(failures)
            written += rows
        processed = len(work.symbols) - len(failed)
        outcome = BatchOutcome(processed=processed, failed=len(failed))
        per_symbol = len(p.columns) if self.kind == "indicators" else len(p.patterns)
        if self.kind == "indicators":
            outcome.counters = {
                "indicators_processed": processed * per_symbol * len(work.timeframes),
                "indicators_failed": len(failed) * per_symbol * len(work.timeframes)}
        else:
            outcome.counters = {"patterns_detected": written}
        return outcome

    def _timeframe(self, symbols: Sequence[str], timeframe: str, specs: tuple[Spec, ...],
                   p: Plan) -> tuple[dict[str, str], int]:
        continued = _continued(p) if self.kind == "indicators" else {}
        with self.pool.connection() as conn:
            marks = io.read_watermarks(conn, symbols, timeframe=timeframe, kind=self.kind)
            tails = io.read_tails(conn, symbols, timeframe, max(p.warmup, SETTLE), _FAR_FUTURE,
                                  after=marks)
            stored = (io.read_values_at(conn, marks, timeframe, list(continued))
                      if continued and marks else {})
            intraday = self.calendar is not None and timeframe in _INTRADAY
            daily = context.read_daily(conn, tails) if intraday else {}
        histories: list[tuple[Bars, int]] = []
        failures: dict[str, str] = {}
        for symbol in symbols:
            tail = tails.get(symbol)
            if tail is None:
                continue
            start = int(np.searchsorted(tail.ts, marks[symbol], "right")) if symbol in marks else 0
            if start >= len(tail.ts):
                continue
            session = trend = None
            if intraday:
                assert self.calendar is not None
                session = context.session_opens(self.calendar, tail.ts)
                trend = context.trends(daily.get(symbol), session)
            try:
                histories.append((Bars(symbol, timeframe, tail.ts, tail.open, tail.high,
                                       tail.low, tail.close, tail.volume, session=session,
                                       daily_trend=trend), start))
            except (DataValidationError, ValueError) as exc:
                failures[symbol] = f"{type(exc).__name__}: {exc}"
        results = _compute(histories, specs, failures)
        for result, start in results:
            if result.symbol in stored:
                _continue(result, start, stored[result.symbol], continued)
        rows = self._write(results, timeframe, p)
        return failures, rows

    def _write(self, results: list[tuple[Result, int]], timeframe: str, p: Plan) -> int:
        marks = {r.symbol: int(r.bars.ts[-1]) for r, _ in results}
        with self.pool.connection() as conn, conn.transaction():
            if self.kind == "indicators":
                data, rows = _encode_values(results, timeframe, p)
                io.write_indicator_values(conn, data)
            else:
                rows = io.write_detections(conn, _detections(results))
            io.write_watermarks(conn, marks, timeframe=timeframe, kind=self.kind)
        return rows


def _continued(p: Plan) -> dict[str, float]:
    """The output columns of ``p`` continued from their stored value, with how much of a seed
    difference each keeps per bar: EMAs ``1 - 2 / (period + 1)`` (TA-Lib's smoothing), OBV 1."""
    decay: dict[str, float] = {}
    for spec in p.indicators:
        if spec.kind == "ema":
            decay[spec.name] = 1.0 - 2.0 / (int(spec.param("timeperiod")) + 1)
        elif spec.kind == "obv":
            decay[spec.name] = 1.0
    return decay


def _continue(result: Result, start: int, stored: dict[str, float],
              decay: dict[str, float]) -> None:
    """Take the tail's seed difference off the new bars' values of ``decay``'s columns: it is
    the tail value at the watermark bar (``start - 1``) minus the stored one there, and shrinks
    by ``decay`` a bar after it."""
    if start < 1:
        return
    new = len(result.bars.ts) - start
    for name, rate in decay.items():
        values, have = result.values.get(name), stored.get(name)
        if values is None or have is None:
            continue
        difference = float(values[start - 1]) - have
        if math.isnan(difference):
            continue
        if new == 1:  # the daily case: one new bar
            values[start] -= difference * rate
        else:
            values[start:] -= difference * rate ** np.arange(1, new + 1, dtype=np.float64)


def _compute(histories: list[tuple[Bars, int]], specs: tuple[Spec, ...],
             failures: dict[str, str]) -> list[tuple[Result, int]]:
    """The engine's results of every history, detections from its start on (``compute_recent``:
    one pattern pass per ``CHUNK`` symbols); if any fails, every symbol is redone alone, so a
    bad symbol fails alone."""
    try:
        computed = list(compute_recent(histories, specs))
        return list(zip(computed, (start for _, start in histories), strict=True))
    except (DataValidationError, ValueError):
        pass
    results: list[tuple[Result, int]] = []
    for bars, start in histories:
        try:
            results.extend((r, start) for r in compute_recent([(bars, start)], specs))
        except (DataValidationError, ValueError) as exc:
            failures[bars.symbol] = f"{type(exc).__name__}: {exc}"
    return results


def _encode_values(results: list[tuple[Result, int]], timeframe: str, p: Plan
                   ) -> tuple[bytes, int]:
    """COPY rows of every result's values on its new bars (from ``start`` on)."""
    columns = p.columns
    width = len(columns)
    syms, tss, vals, new = [], [], [], []
    for result, start in results:
        # columns x new bars, flattened column by column
        vals.append(np.vstack([result.values[c][start:] for c in columns]).ravel())
        tss.append(np.tile(result.bars.ts[start:], width))
        syms.append(result.symbol)
        new.append(len(result.bars.ts) - start)
    if not vals:
        return b"", 0
    sym_idx = np.repeat(np.arange(len(syms), dtype=np.intp), np.array(new, dtype=np.intp) * width)
    name_idx = np.concatenate([np.repeat(np.arange(width, dtype=np.intp), n) for n in new])
    return io.encode_values(syms, timeframe, columns,
                            (sym_idx, name_idx, np.concatenate(tss), np.concatenate(vals)))


def _detections(results: list[tuple[Result, int]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for result, start in results:
        found = result.detections
        for d in found.rows(found.found.index >= start):
            out.append({"symbol": d.symbol, "timeframe": d.timeframe, "ts": d.ts_ns,
                        "pattern": d.pattern, "direction": d.direction, "strength": d.strength,
                        "confidence": d.confidence, "levels": d.levels, "evidence": d.evidence,
                        "daily_agrees": d.daily_agrees})
    return out
