"""Analysis results: indicator values, pattern detections, pattern outcomes.

Writes are bulk and idempotent: rows are COPYed into a temporary staging table (binary COPY
built with numpy for indicator values) and merged with ``INSERT .. ON CONFLICT .. DO UPDATE``
on the natural key, touching only rows whose values changed; running a write twice changes
nothing. NaN values are not written (an indicator still warming up has no value yet).
``since`` writes only the tail of a history -- the bars stamped at or after it -- so the
daily run recomputes over a warm-up window and stores just the new bars.

Reads: ``latest_values`` (one symbol, every name), ``symbols_with_pattern`` (one pattern at
one bar time, every symbol), all answered from indexes.

The store does not import ``tickstock.analysis`` (it sits below it): inputs are protocols that
the analysis results (``Result``, ``Detection``, ``OutcomeStats``) satisfy.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from tickstock.core.errors import DataValidationError

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970-01-01
_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)


class IndicatorSeries(Protocol):
    """Indicator columns of one symbol (``tickstock.analysis.Result`` is one)."""

    @property
    def symbol(self) -> str: ...
    @property
    def ts_ns(self) -> I64: ...  # bar starts, ns since the epoch, UTC
    @property
    def values(self) -> Mapping[str, F64]: ...  # name -> values aligned with ts_ns


class DetectionRecord(Protocol):
    """One detection (``tickstock.analysis.Detection`` is one)."""

    @property
    def symbol(self) -> str: ...
    @property
    def timeframe(self) -> str: ...
    @property
    def ts_ns(self) -> int: ...
    @property
    def pattern(self) -> str: ...
    @property
    def direction(self) -> str: ...
    @property
    def strength(self) -> float: ...
    @property
    def confidence(self) -> float: ...
    @property
    def levels(self) -> Mapping[str, float]: ...
    @property
    def evidence(self) -> Mapping[str, float]: ...
    @property
    def daily_agrees(self) -> bool | None: ...


class OutcomeRecord(Protocol):
    """Outcome statistics of a pattern (``tickstock.analysis.outcomes.OutcomeStats`` is one)."""

    @property
    def pattern(self) -> str: ...
    @property
    def timeframe(self) -> str: ...
    @property
    def horizon_bars(self) -> int: ...
    @property
    def occurrences(self) -> int: ...
    @property
    def mean_return(self) -> float | None: ...
    @property
    def median_return(self) -> float | None: ...
    @property
    def p10_return(self) -> float | None: ...
    @property
    def p90_return(self) -> float | None: ...
    @property
    def hit_rate(self) -> float | None: ...
    @property
    def period_start_ns(self) -> int: ...
    @property
    def period_end_ns(self) -> int: ...


def ns_to_datetime(ns: int) -> datetime:
    seconds, rest = divmod(int(ns), 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest // 1000)


def datetime_to_ns(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise DataValidationError(f"naive datetime {dt.isoformat()} has no timezone")
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


# -- writes --------------------------------------------------------------------------------


def _encode_indicator_rows(
    timeframe: str, series: Iterable[IndicatorSeries], since_ns: int | None
) -> tuple[bytes, int]:
    """Binary COPY rows (symbol, timeframe, ts, name, value), built with numpy.

    Rows are grouped by the byte lengths of (symbol, name) so that each group is one
    fixed-width structured array."""
    groups: dict[tuple[int, int], list[tuple[bytes, bytes, I64, F64]]] = {}
    for s in series:
        sym = s.symbol.encode()
        ts = np.asarray(s.ts_ns, dtype=np.int64)
        start = 0 if since_ns is None else int(np.searchsorted(ts, since_ns, side="left"))
        us = ts[start:] // 1000 - _PG_EPOCH_US
        for name, values in s.values.items():
            v = np.asarray(values, dtype=np.float64)[start:]
            keep = ~np.isnan(v)
            if keep.any():
                key = (len(sym), len(name.encode()))
                groups.setdefault(key, []).append((sym, name.encode(), us[keep], v[keep]))
    tf = timeframe.encode()
    parts, count = [_HEADER], 0
    for (sym_len, name_len), pieces in groups.items():
        dtype = np.dtype([("n", ">i2"), ("l0", ">i4"), ("sym", f"S{sym_len}"), ("l1", ">i4"),
                          ("tf", f"S{len(tf)}"), ("l2", ">i4"), ("ts", ">i8"), ("l3", ">i4"),
                          ("name", f"S{name_len}"), ("l4", ">i4"), ("v", ">f8")])  # fmt: skip
        sizes = [len(p[2]) for p in pieces]
        block = np.empty(sum(sizes), dtype=dtype)
        block["n"], block["l0"], block["l1"], block["l2"] = 5, sym_len, len(tf), 8
        block["l3"], block["l4"], block["tf"] = name_len, 8, tf
        block["sym"] = np.repeat(np.array([p[0] for p in pieces]), sizes)
        block["name"] = np.repeat(np.array([p[1] for p in pieces]), sizes)
        block["ts"] = np.concatenate([p[2] for p in pieces])
        block["v"] = np.concatenate([p[3] for p in pieces])
        parts.append(block.tobytes())
        count += block.shape[0]
    parts.append(_TRAILER)
    return b"".join(parts), count


def _merge(
    conn: psycopg.Connection[Any],
    table: str,
    columns: Sequence[str],
    key: Sequence[str],
    data: bytes | str,
    *,
    binary: bool,
) -> int:
    """COPY ``data`` into a staging copy of ``table`` and upsert it; rows inserted or changed."""
    stage = sql.Identifier(f"{table}_stage")
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    updated = [c for c in columns if c not in key]
    fmt = sql.SQL(" (FORMAT BINARY)" if binary else "")
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            ).format(stage, sql.Identifier(table))
        )
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN{}").format(stage, cols, fmt)) as copy:
            copy.write(data)
        sets = sql.SQL(", ").join(sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in updated)
        changed = sql.SQL(" OR ").join(
            sql.SQL("t.{c} IS DISTINCT FROM EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in updated
        )
        cur.execute(
            sql.SQL(
                "INSERT INTO {t} AS t ({cols}) SELECT {cols} FROM {s} "
                "ON CONFLICT ({key}) DO UPDATE SET {sets} WHERE {changed}"
            ).format(
                t=sql.Identifier(table),
                cols=cols,
                s=stage,
                key=sql.SQL(", ").join(map(sql.Identifier, key)),
                sets=sets,
                changed=changed,
            )
        )
        written = cur.rowcount
        cur.execute(sql.SQL("TRUNCATE {}").format(stage))
    return written


def write_indicator_values(
    conn: psycopg.Connection[Any],
    timeframe: str,
    series: Iterable[IndicatorSeries],
    *,
    since: datetime | None = None,
) -> int:
    """Upsert the indicator values of ``series`` (only bars ``>= since`` when given).

    Returns the number of rows inserted or changed (0 when everything was already stored)."""
    since_ns = None if since is None else datetime_to_ns(since)
    data, count = _encode_indicator_rows(timeframe, series, since_ns)
    if not count:
        return 0
    columns = ("symbol", "timeframe", "ts", "name", "value")
    return _merge(conn, "indicator_values", columns, ("symbol", "timeframe", "name", "ts"), data, binary=True)


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float):
        return repr(value)
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _json(value: Mapping[str, float]) -> str:
    return json.dumps(dict(value), separators=(",", ":"), allow_nan=False)


_DETECTION_COLUMNS = ("symbol", "timeframe", "ts", "pattern", "direction", "strength",
                      "confidence", "levels", "evidence", "daily_agrees", "source")  # fmt: skip


def write_detections(
    conn: psycopg.Connection[Any],
    detections: Iterable[DetectionRecord],
    *,
    source: Literal["batch", "live"] = "batch",
    since: datetime | None = None,
) -> int:
    """Upsert ``detections`` (only those stamped ``>= since`` when given); rows changed."""
    since_ns = None if since is None else datetime_to_ns(since)
    lines: list[str] = []
    for d in detections:
        if since_ns is not None and d.ts_ns < since_ns:
            continue
        row = (d.symbol, d.timeframe, ns_to_datetime(d.ts_ns).isoformat(), d.pattern,
               d.direction, d.strength, d.confidence, _json(d.levels), _json(d.evidence),
               d.daily_agrees, source)  # fmt: skip
        lines.append("\t".join(map(_text, row)))
    if not lines:
        return 0
    data = "\n".join(lines) + "\n"
    key = ("symbol", "timeframe", "pattern", "ts")
    return _merge(conn, "pattern_detections", _DETECTION_COLUMNS, key, data, binary=False)


_OUTCOME_COLUMNS = ("pattern", "timeframe", "universe", "horizon_bars", "period_start",
                    "period_end", "occurrences", "mean_return", "median_return", "p10_return",
                    "p90_return", "hit_rate")  # fmt: skip


def write_outcomes(conn: psycopg.Connection[Any], universe: str, outcomes: Iterable[OutcomeRecord]) -> int:
    """Upsert outcome statistics of ``universe`` (one row per pattern, timeframe, horizon)."""
    lines = []
    for o in outcomes:
        row = (o.pattern, o.timeframe, universe, o.horizon_bars,
               ns_to_datetime(o.period_start_ns).isoformat(),
               ns_to_datetime(o.period_end_ns).isoformat(), o.occurrences, o.mean_return,
               o.median_return, o.p10_return, o.p90_return, o.hit_rate)  # fmt: skip
        lines.append("\t".join(map(_text, row)))
    if not lines:
        return 0
    key = ("pattern", "timeframe", "universe", "horizon_bars")
    return _merge(conn, "pattern_outcomes", _OUTCOME_COLUMNS, key, "\n".join(lines) + "\n", binary=False)


# -- reads ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LatestValue:
    ts: datetime
    value: float


#: The newest row of each name of one symbol and timeframe, from the ``indicator_values`` primary
#: key (symbol, timeframe, name, ts): the names walked one index probe at a time (a skip scan),
#: then each one's newest row; never the symbol's whole history.
_LATEST = """
WITH RECURSIVE names(name) AS (
    (SELECT name FROM indicator_values WHERE symbol = %(s)s AND timeframe = %(tf)s
     ORDER BY name LIMIT 1)
    UNION ALL
    SELECT (SELECT v.name FROM indicator_values v
            WHERE v.symbol = %(s)s AND v.timeframe = %(tf)s AND v.name > names.name
            ORDER BY v.name LIMIT 1)
    FROM names WHERE names.name IS NOT NULL
)
SELECT n.name, l.ts, l.value FROM names n
CROSS JOIN LATERAL (
    SELECT ts, value FROM indicator_values v
    WHERE v.symbol = %(s)s AND v.timeframe = %(tf)s AND v.name = n.name
    ORDER BY ts DESC LIMIT 1) l
"""


def latest_values(conn: psycopg.Connection[Any], symbol: str, timeframe: str) -> dict[str, LatestValue]:
    """The newest value of every indicator of ``symbol`` (index probes: ``_LATEST``)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_LATEST, {"s": symbol, "tf": timeframe}).fetchall()
    return {r["name"]: LatestValue(r["ts"], r["value"]) for r in rows}


def indicator_history(
    conn: psycopg.Connection[Any],
    symbol: str,
    timeframe: str,
    name: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> tuple[I64, F64]:
    """One indicator's stored series in ``[start, end)``: (ts in ns, values), oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT ts, value FROM indicator_values WHERE symbol = %s AND timeframe = %s "
            "AND name = %s AND ts >= coalesce(%s::timestamptz, '-infinity') "
            "AND ts < coalesce(%s::timestamptz, 'infinity') "
            "ORDER BY ts",
            (symbol, timeframe, name, start, end),
        ).fetchall()
    ts = np.array([datetime_to_ns(r["ts"]) for r in rows], dtype=np.int64)
    return ts, np.array([r["value"] for r in rows], dtype=np.float64)


@dataclass(frozen=True)
class StoredDetection:
    symbol: str
    timeframe: str
    ts: datetime
    pattern: str
    direction: str
    strength: float | None
    confidence: float
    levels: dict[str, float]
    evidence: dict[str, float]
    daily_agrees: bool | None
    source: str


_DETECTION_SELECT = (
    "SELECT symbol, timeframe, ts, pattern, direction, strength, confidence, levels, evidence, "
    "daily_agrees, source FROM pattern_detections "
)


def symbols_with_pattern(
    conn: psycopg.Connection[Any], pattern: str, timeframe: str, ts: datetime
) -> list[StoredDetection]:
    """Every symbol's detection of ``pattern`` on the bar stamped ``ts`` (by confidence)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            _DETECTION_SELECT + "WHERE pattern = %s AND timeframe = %s AND ts = %s "
            "ORDER BY confidence DESC, symbol",
            (pattern, timeframe, ts),
        ).fetchall()
    return [StoredDetection(**r) for r in rows]


def detections_of(
    conn: psycopg.Connection[Any],
    symbol: str,
    timeframe: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[StoredDetection]:
    """A symbol's detections in ``[start, end)``, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            _DETECTION_SELECT + "WHERE symbol = %s AND timeframe = %s "
            "AND ts >= coalesce(%s::timestamptz, '-infinity') AND ts < coalesce(%s::timestamptz, 'infinity') "
            "ORDER BY ts, pattern",
            (symbol, timeframe, start, end),
        ).fetchall()
    return [StoredDetection(**r) for r in rows]


def outcomes_of(
    conn: psycopg.Connection[Any], universe: str, timeframe: str, pattern: str | None = None
) -> list[dict[str, Any]]:
    """Stored outcome statistics of a universe (one pattern, or all), by pattern and horizon."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM pattern_outcomes WHERE universe = %s AND timeframe = %s "
            "AND (%s::text IS NULL OR pattern = %s) ORDER BY pattern, horizon_bars",
            (universe, timeframe, pattern, pattern),
        ).fetchall()
