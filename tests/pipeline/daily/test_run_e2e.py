"""A whole daily run over real data through the bus, checked against the analysis engine.

Oracle: ``tickstock.analysis.batch.compute`` over the bars the run stored (the engine's batch
computation; its own tests check it against TA-Lib). A run from nothing computes each symbol's
whole history, so stored values must equal the engine's exactly.
"""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import numpy as np
import psycopg
from daily_harness import LAST_DAY, Harness, real_symbols, seed_universe

from tickstock.analysis.batch import compute
from tickstock.analysis.registry import DEFAULT_INDICATORS, DEFAULT_PATTERNS
from tickstock.bus.events import EventReader
from tickstock.contracts.commands import RetryFailedImports, TriggerDailyProcessing
from tickstock.contracts.events import CommandAccepted, CommandRejected
from tickstock.core.clock import LiveClock


def check_against_engine(h: Harness, symbol: str) -> tuple[int, int]:
    """Stored indicator values and detections of ``symbol`` equal the engine's batch output."""
    bars = h.stored_bars(symbol)
    expected = compute(bars, (*DEFAULT_INDICATORS, *DEFAULT_PATTERNS))
    stored = h.stored_values(symbol)
    values = 0
    for name, arr in expected.values.items():
        if name not in {c for spec in DEFAULT_INDICATORS for c in spec.columns}:
            continue
        want = {int(t): float(v) for t, v in zip(bars.ts, arr, strict=True) if not math.isnan(v)}
        assert stored.get(name, {}) == want, f"{symbol} {name}"
        values += len(want)
    with psycopg.connect(h.dsn) as conn:
        rows = conn.execute(
            "SELECT pattern, ts, direction, confidence FROM pattern_detections WHERE symbol = %s",
            (symbol,)).fetchall()
    got = {(p, int(ts.timestamp()) * 10**9, d, round(c, 12)) for p, ts, d, c in rows}
    want_d = {(d.pattern, d.ts_ns, d.direction, round(d.confidence, 12))
              for d in expected.detections}
    assert got == want_d, f"{symbol} detections"
    return values, len(want_d)


def test_full_run_equals_engine_and_a_bad_symbol_fails_alone(
    harness: Harness, shared_data: Path
) -> None:
    symbols = [*real_symbols(shared_data, 24), "ZZZZ"]  # ZZZZ has no data file
    seed_universe(harness.dsn, "real24", symbols)
    harness.start_workers(2, batch_size=5)
    command_id = harness.send(TriggerDailyProcessing(universes=("real24",)))
    answer = harness.answer(command_id)
    assert isinstance(answer.data, CommandAccepted), answer.data
    run = harness.wait_run(answer.data.run_id or "")
    assert run.status == "completed", run.error_message
    assert run.session_date is not None and run.session_date.isoformat() == "2017-12-06"
    assert (run.symbols_total, run.symbols_processed, run.symbols_failed) == (25, 24, 1)
    phases = {p.phase: p for p in harness.runs.phases(run.run_id)}
    assert set(phases) == {"data_import", "indicators", "patterns", "outcomes"}
    assert all(p.status == "completed" for p in phases.values())
    assert run.indicators_processed > 0 and run.patterns_detected > 0
    failures = harness.runs.open_import_failures(source_id=run.run_id)
    assert [(f.symbol, f.timeframe) for f in failures] == [("ZZZZ", "day")]
    assert "ZZZZ" in failures[0].reason

    for symbol in symbols[:24:6]:
        values, detections = check_against_engine(harness, symbol)
        assert values > 1000 and detections > 0
    _check_events(harness, run.run_id)

    # Nothing new: a second run writes nothing and changes nothing.
    before = _counts(harness)
    again = harness.send(TriggerDailyProcessing(universes=("real24",), skip_market_check=True))
    answer2 = harness.answer(again)
    assert isinstance(answer2.data, CommandAccepted)
    assert harness.wait_run(answer2.data.run_id or "").status == "completed"
    assert _counts(harness) == before

    # Without skip_market_check the same session is refused with the reason.
    refused = harness.answer(harness.send(TriggerDailyProcessing(universes=("real24",))))
    assert isinstance(refused.data, CommandRejected)
    assert "already processed" in refused.data.reason

    # Retry failed imports: ZZZZ fails again, and stays open.
    retry = harness.answer(harness.send(RetryFailedImports()))
    assert isinstance(retry.data, CommandAccepted)
    rerun = harness.wait_run(retry.data.run_id or "")
    assert rerun.symbols_total == 1 and rerun.symbols_failed == 1
    assert [f.symbol for f in harness.runs.open_import_failures()] == ["ZZZZ"]


def test_top_up_run_continues_the_stored_results(harness: Harness, shared_data: Path) -> None:
    """A run over history up to Friday 2017-12-01, then the evenings of Monday the 4th and
    Wednesday the 6th: those runs read tails (from the watermarks), and what they store for
    Mon-Wed equals the engine's batch computation over the whole stored history -- windowed
    values and detections exactly, the EMAs and OBV continued from their stored values to
    rounding, the other recursive indicators (RSI, ATR, ADX, MACD) within 1e-6 of their value,
    confidences within 1e-8 -- while every earlier value stays as it was."""
    symbols = real_symbols(shared_data, 6)
    seed_universe(harness.dsn, "real6", symbols)
    harness.clock.set(LAST_DAY - timedelta(days=5))
    harness.start_workers(1, batch_size=4)
    first = harness.answer(harness.send(TriggerDailyProcessing(universes=("real6",))))
    assert isinstance(first.data, CommandAccepted), first.data
    assert harness.wait_run(first.data.run_id or "").status == "completed"
    before = {s: harness.stored_values(s) for s in symbols}

    for evening, session in ((LAST_DAY - timedelta(days=2), "2017-12-04"),  # one new bar
                             (LAST_DAY, "2017-12-06")):  # two
        harness.clock.set(evening)
        answer = harness.answer(harness.send(TriggerDailyProcessing(universes=("real6",))))
        assert isinstance(answer.data, CommandAccepted), answer.data
        run = harness.wait_run(answer.data.run_id or "")
        assert run.status == "completed" and str(run.session_date) == session

    columns = {c for spec in DEFAULT_INDICATORS for c in spec.columns}
    for symbol in symbols:
        bars = harness.stored_bars(symbol)
        assert len(bars) > 1000  # five years: the tail is a fraction of the history
        new = bars.ts[-3:]  # Mon 4th, Tue 5th, Wed 6th
        expected = compute(bars, (*DEFAULT_INDICATORS, *DEFAULT_PATTERNS))
        stored = harness.stored_values(symbol)
        for name in columns:
            old = before[symbol].get(name, {})
            assert {t: v for t, v in stored.get(name, {}).items() if t < new[0]} == old, name
            for k, ts in enumerate(new.tolist()):
                want = float(expected.values[name][len(bars) - 3 + k])
                got = stored.get(name, {}).get(ts, math.nan)
                if math.isnan(want):  # not defined on daily bars (session VWAP): not stored
                    assert math.isnan(got), (symbol, name, ts)
                    continue
                exact = name.startswith(("ema_", "obv")) or not name.startswith(
                    ("rsi", "atr", "adx", "macd"))
                tolerance = (1e-12 if exact else 1e-6) * max(abs(want), 1.0)
                assert abs(got - want) <= tolerance, (symbol, name, ts, got, want)
        with psycopg.connect(harness.dsn) as conn:
            rows = conn.execute(
                "SELECT pattern, ts, direction, confidence FROM pattern_detections "
                "WHERE symbol = %s AND ts >= to_timestamp(%s / 1e9)",
                (symbol, int(new[0]))).fetchall()
        got_d = sorted((p, int(ts.timestamp()) * 10**9, d, c) for p, ts, d, c in rows)
        want_d = sorted((d.pattern, d.ts_ns, d.direction, d.confidence)
                        for d in expected.detections if d.ts_ns >= new[0])
        assert [g[:3] for g in got_d] == [w[:3] for w in want_d], symbol
        assert max((abs(g[3] - w[3]) for g, w in zip(got_d, want_d, strict=True)), default=0) <= 1e-8


def _check_events(h: Harness, run_id: str) -> None:
    """The run was published as it went: started, each phase started/progressed/completed in
    order, then completed, every event carrying the run id."""
    events = [env for _, env in EventReader(h.client, clock=LiveClock()).recent(5000)
              if env.correlation_id == run_id]
    types = [env.type for env in events]
    assert types[0] == "run.started" and types[-1] == "run.completed", types
    phases = [str(getattr(env.data, "phase", "")) for env in events
              if env.type == "run.phase_completed"]
    assert phases == ["data_import", "indicators", "patterns", "outcomes"]
    for phase in phases:
        percents = [getattr(env.data, "percent", None) for env in events
                    if env.type == "run.phase_progress"
                    and str(getattr(env.data, "phase", "")) == phase]
        assert percents and percents[-1] == 100.0
    assert "run.progress" in types


def _counts(h: Harness) -> tuple[int, int, int]:
    with psycopg.connect(h.dsn) as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM bars), (SELECT count(*) FROM "
                           "indicator_values), (SELECT count(*) FROM pattern_detections)"
                           ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def test_whole_real_universe_run_equals_engine(harness: Harness, shared_data: Path) -> None:
    """All 489 symbols of ../shared/data/daily, each with its last half year of bars (the whole
    five years would be 35 million indicator rows: minutes of COPY on a shared machine, which
    ``bench/daily.py`` measures instead): every symbol's stored value counts equal the
    engine's, and every 20th symbol's values and detections are equal one by one."""
    symbols = real_symbols(shared_data, 1000)
    assert len(symbols) == 489
    seed_universe(harness.dsn, "real", symbols)
    harness.start_workers(2, batch_size=40, history_years=0.5)
    answer = harness.answer(harness.send(TriggerDailyProcessing(universes=("real",))))
    assert isinstance(answer.data, CommandAccepted), answer.data
    run = harness.wait_run(answer.data.run_id or "", timeout_s=900)
    assert run.status == "completed", run.error_message
    assert (run.symbols_total, run.symbols_processed, run.symbols_failed) == (489, 489, 0)
    assert run.indicators_failed == 0 and run.indicators_processed == run.indicators_total
    counts = _value_counts(harness)
    columns = {c for spec in DEFAULT_INDICATORS for c in spec.columns}
    for symbol in symbols:
        bars = harness.stored_bars(symbol)
        expected = compute(bars, DEFAULT_INDICATORS)
        want = {name: int((~np.isnan(arr)).sum()) for name, arr in expected.values.items()
                if name in columns and (~np.isnan(arr)).any()}
        assert counts.get(symbol, {}) == want, symbol
    for symbol in symbols[::20]:
        check_against_engine(harness, symbol)


def _value_counts(h: Harness) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    with psycopg.connect(h.dsn) as conn:
        for symbol, name, n in conn.execute(
                "SELECT symbol, name, count(*) FROM indicator_values GROUP BY 1, 2"):
            out.setdefault(symbol, {})[name] = int(n)
    return out
