"""The analysis results repository on a real PostgreSQL: bulk idempotent writes, tails, reads.

Oracle: the analysis engine's own results (``batch.compute`` on real daily bars), compared
with what reads return.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from tests.analysis.conftest import load_daily
from tickstock.analysis import Result, batch
from tickstock.analysis.outcomes import pattern_outcomes
from tickstock.store import analysis as repo

SYMBOLS = ("AAPL", "MSFT", "XOM", "JPM")
TAIL = 300  # bars per symbol written in these tests (the table does not care how many)


@pytest.fixture(scope="module")
def results(shared_data: Path) -> dict[str, Result]:
    out = {}
    for symbol in SYMBOLS:
        bars = load_daily(shared_data / "daily" / f"{symbol}.csv.gz")
        out[symbol] = batch.compute(bars.slice(len(bars) - TAIL))
    return out


@pytest.fixture
def conn(db_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_dsn, autocommit=True) as c:
        yield c


def count(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def non_nan(result: Result) -> int:
    return sum(int((~np.isnan(v)).sum()) for v in result.values.values())


def test_indicator_values_are_written_once_and_read_back_exactly(
    conn: psycopg.Connection[Any], results: dict[str, Result]
) -> None:
    expected = sum(non_nan(r) for r in results.values())
    assert repo.write_indicator_values(conn, "day", results.values()) == expected
    assert count(conn, "indicator_values") == expected
    assert repo.write_indicator_values(conn, "day", results.values()) == 0  # idempotent
    assert count(conn, "indicator_values") == expected

    r = results["AAPL"]
    ts, values = repo.indicator_history(conn, "AAPL", "day", "macd_12_26_9.signal")
    want = r.values["macd_12_26_9.signal"]
    assert np.array_equal(ts, r.ts_ns[~np.isnan(want)])
    assert np.array_equal(values, want[~np.isnan(want)])  # float8 round trip is exact

    latest = repo.latest_values(conn, "AAPL", "day")
    assert {k: v.value for k, v in latest.items()} == r.latest()
    assert {v.ts for v in latest.values()} == {repo.ns_to_datetime(int(r.ts_ns[-1]))}


def test_a_changed_value_is_updated_and_latest_follows(
    conn: psycopg.Connection[Any], results: dict[str, Result]
) -> None:
    r = results["XOM"]
    repo.write_indicator_values(conn, "day", [r])
    changed = dict(r.values)
    changed["rsi_14"] = r.values["rsi_14"].copy()
    changed["rsi_14"][-1] = 12.5

    class Series:
        symbol, ts_ns, values = r.symbol, r.ts_ns, changed

    assert repo.write_indicator_values(conn, "day", [Series()]) == 1
    assert repo.latest_values(conn, "XOM", "day")["rsi_14"].value == 12.5
    # deleting the newest rows falls back to the previous bar (trigger on delete)
    last = repo.ns_to_datetime(int(r.ts_ns[-1]))
    conn.execute("DELETE FROM indicator_values WHERE symbol = 'XOM' AND ts = %s", (last,))
    latest = repo.latest_values(conn, "XOM", "day")
    assert latest["rsi_14"].value == r.values["rsi_14"][-2]
    assert latest["rsi_14"].ts == repo.ns_to_datetime(int(r.ts_ns[-2]))


def test_tail_write_stores_only_the_new_bars(
    conn: psycopg.Connection[Any], results: dict[str, Result]
) -> None:
    r = results["JPM"]
    since = repo.ns_to_datetime(int(r.ts_ns[-5]))
    written = repo.write_indicator_values(conn, "day", [r], since=since)
    assert written == non_nan(r.tail(int(r.ts_ns[-5])))
    stored = conn.execute("SELECT DISTINCT ts FROM indicator_values ORDER BY ts").fetchall()
    assert [row[0] for row in stored] == [repo.ns_to_datetime(int(t)) for t in r.ts_ns[-5:]]
    latest = repo.latest_values(conn, "JPM", "day")
    assert {v.ts for v in latest.values()} == {repo.ns_to_datetime(int(r.ts_ns[-1]))}


def _detection_key(d: Any) -> tuple[object, ...]:
    strength = d.strength if d.strength is not None and not math.isnan(d.strength) else None
    return (d.symbol, d.pattern, d.direction, strength, d.confidence, dict(d.levels),
            dict(d.evidence), d.daily_agrees)  # fmt: skip


def test_detections_round_trip_and_pattern_at_time(
    conn: psycopg.Connection[Any], results: dict[str, Result]
) -> None:
    all_dets = [d for r in results.values() for d in r.detections]
    assert repo.write_detections(conn, all_dets) == len(all_dets)
    assert repo.write_detections(conn, all_dets) == 0
    assert count(conn, "pattern_detections") == len(all_dets)

    # the (pattern, ts) with the most symbols
    groups: dict[tuple[str, int], list[Any]] = {}
    for d in all_dets:
        groups.setdefault((d.pattern, d.ts_ns), []).append(d)
    (pattern, ts_ns), want = max(groups.items(), key=lambda kv: len(kv[1]))
    assert len(want) >= 2
    got = repo.symbols_with_pattern(conn, pattern, "day", repo.ns_to_datetime(ts_ns))
    assert sorted(map(_detection_key, got), key=repr) == sorted(map(_detection_key, want), key=repr)
    assert [g.confidence for g in got] == sorted((g.confidence for g in got), reverse=True)

    aapl = repo.detections_of(conn, "AAPL", "day")
    assert len(aapl) == len(results["AAPL"].detections)


def test_outcomes_round_trip(conn: psycopg.Connection[Any], results: dict[str, Result]) -> None:
    stats = pattern_outcomes(results.values())
    assert repo.write_outcomes(conn, "test4", stats) == len(stats)
    assert repo.write_outcomes(conn, "test4", stats) == 0
    stored = repo.outcomes_of(conn, "test4", "day", "golden_cross") or repo.outcomes_of(
        conn, "test4", "day", "cdl_engulfing"
    )
    assert [row["horizon_bars"] for row in stored] == [1, 5, 20]
    want = {(s.pattern, s.horizon_bars): s for s in stats}
    for row in stored:
        s = want[(row["pattern"], row["horizon_bars"])]
        assert (row["occurrences"], row["mean_return"], row["hit_rate"]) == (
            s.occurrences, s.mean_return, s.hit_rate,
        )  # fmt: skip


def _plan(conn: psycopg.Connection[Any], query: str, params: tuple[object, ...]) -> str:
    return "\n".join(str(row[0]) for row in conn.execute("EXPLAIN " + query, params))


def test_pattern_at_time_and_latest_values_read_indexes(conn: psycopg.Connection[Any]) -> None:
    """The repository's own queries, EXPLAINed over 2,000 symbols x 10 bars of detections and
    3,000 symbols x 6 values on 3 bars: index scans, never a sequential scan."""
    day = 86_400_000_000_000
    start = int(np.datetime64("2024-01-02", "ns").astype(np.int64))

    class Det:
        def __init__(self, i: int, k: int) -> None:
            self.symbol, self.timeframe, self.ts_ns = f"S{i:04d}", "day", start + k * day
            self.pattern = ("cdl_doji", "gap_up", "golden_cross")[(i + k) % 3]
            self.direction, self.strength, self.confidence = "bullish", 0.5, 0.6
            self.levels, self.evidence, self.daily_agrees = {"level": 1.0}, {"metric": 1.0}, None

    repo.write_detections(conn, [Det(i, k) for i in range(2000) for k in range(10)])
    ts = start + np.arange(3, dtype=np.int64) * day

    class Series:
        def __init__(self, i: int) -> None:
            self.symbol, self.ts_ns = f"S{i:04d}", ts
            self.values = {
                n: np.array([float(i), float(i) + 1, float(i) + 2])
                for n in ("rsi_14", "sma_50", "sma_200", "adx_14", "a", "b")
            }

    repo.write_indicator_values(conn, "day", [Series(i) for i in range(3000)])
    conn.execute("ANALYZE pattern_detections")
    conn.execute("ANALYZE indicator_values")

    at = repo.ns_to_datetime(start + 5 * day)
    hits = repo.symbols_with_pattern(conn, "gap_up", "day", at)
    assert len(hits) == 666 and {h.pattern for h in hits} == {"gap_up"}
    plan = _plan(
        conn,
        repo._DETECTION_SELECT + "WHERE pattern = %s AND timeframe = %s AND ts = %s",
        ("gap_up", "day", at),
    )
    assert "Index" in plan and "Seq Scan" not in plan, plan

    latest = repo.latest_values(conn, "S0042", "day")
    newest = (repo.ns_to_datetime(int(ts[-1])), 44.0)
    assert {n: (v.ts, v.value) for n, v in latest.items()} == dict.fromkeys(
        ("rsi_14", "sma_50", "sma_200", "adx_14", "a", "b"), newest)
    plan = "\n".join(str(row[0]) for row in conn.execute(
        "EXPLAIN " + repo._LATEST, {"s": "S0042", "tf": "day"}))
    assert "indicator_values_pkey" in plan and "Seq Scan" not in plan, plan
