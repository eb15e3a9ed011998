"""Batch I/O of the analysis phases: the tails of many symbols in one read, their results in
one COPY.

Thin adapter until ``tickstock.store.analysis`` offers multi-symbol reads and bulk writes:

- ``read_tails``: the last ``n`` bars before ``until`` of every symbol of a batch in one query
  (or, given the watermarks, the bars after each symbol's mark and ``n`` up to it), one row
  per symbol whose columns are binary arrays (``array_send``) parsed with
  ``np.frombuffer``;
- ``read_watermarks`` / ``write_watermarks``: per symbol, the newest bar whose results are
  stored (``analysis_watermarks``), written with the results; ``read_values_at``: stored
  values on those bars;
- ``write_indicator_values`` / ``write_detections``: one COPY per batch, straight into the table
  when nothing is there yet (the daily case), else through a staging table and an upsert, so a
  redone batch never duplicates a row.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import psycopg
from psycopg import sql

_PG_EPOCH_US = 946_684_800_000_000
_COLUMNS = ("ts", "open", "high", "low", "close", "volume")
# One row per symbol: each column as the binary send format of an array (``array_send``), so a
# batch of 250 symbols x 568 bars is 250 rows to fetch, not 142,000 (psycopg hands COPY data
# over one row at a time, which cost more than the whole computation).
_TAILS = """
SELECT s.i::int4, t.*
FROM unnest(%(symbols)s::text[], %(after)s::timestamptz[]) WITH ORDINALITY AS s(symbol, after, i)
CROSS JOIN LATERAL (
    SELECT {columns} FROM (
        SELECT ts, open, high, low, close, volume FROM bars
        WHERE bars.symbol = s.symbol AND bars.timeframe = %(tf)s AND bars.ts < %(until)s
        ORDER BY ts DESC
        LIMIT CASE
            WHEN s.after IS NOT NULL THEN %(n)s + (
                SELECT count(*) FROM bars n
                WHERE n.symbol = s.symbol AND n.timeframe = %(tf)s AND n.ts > s.after
                  AND n.ts < %(until)s)
            WHEN %(whole)s THEN NULL
            ELSE %(n)s END) b) t
""".format(columns=", ".join(f"array_send(array_agg(b.{c}))" for c in _COLUMNS))
_ARRAY_HEADER = 20  # ndim, has-null flag, element type, length, lower bound: int4 each
_ELEMENT = np.dtype([("len", ">i4"), ("v", ">i8")])
_ELEMENT_F = np.dtype([("len", ">i4"), ("v", ">f8")])
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Tail:
    """The last bars of one symbol, oldest first (ns UTC bar starts)."""

    symbol: str
    ts: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64


def read_tails(conn: psycopg.Connection[Any], symbols: Sequence[str], timeframe: str,
               n: int, until: datetime, *, after: Mapping[str, int] | None = None
               ) -> dict[str, Tail]:
    """The last ``n`` bars (``ts < until``) of each symbol; symbols without bars are absent.

    With ``after`` (bar start in ns per symbol, a watermark): a symbol in it gets every bar after
    its mark plus the ``n`` bars up to it, a symbol not in it its whole history."""
    marks = [None if after is None or s not in after else _dt(after[s]) for s in symbols]
    params = {"symbols": list(symbols), "after": marks, "tf": timeframe, "until": until, "n": n,
              "whole": after is not None}
    with conn.cursor(binary=True, row_factory=psycopg.rows.tuple_row) as cur:
        cur.execute("SET LOCAL jit = off")  # compiling costs more than this query runs
        rows = cur.execute(_TAILS, params).fetchall()
    tails: dict[str, Tail] = {}
    for row in rows:
        if row[1] is None:
            continue  # no bars
        symbol = symbols[int(row[0]) - 1]
        ts = (_array(row[1], _ELEMENT) + _PG_EPOCH_US) * 1000
        # The rows reach array_agg newest first (the sorted subquery); oldest first is wanted.
        # That order is PostgreSQL's behaviour, not a guarantee, so it is checked.
        order = np.arange(len(ts) - 1, -1, -1)
        if len(ts) > 1 and not bool(np.all(np.diff(ts[order]) > 0)):
            order = np.argsort(ts, kind="stable")
        tails[symbol] = Tail(symbol, ts[order], *(_array(raw, _ELEMENT_F)[order]
                                                   for raw in row[2:]))
    return tails


def _array(raw: bytes, dtype: np.dtype[Any]) -> Any:
    """The values of a one-dimensional ``array_send`` without nulls (bars columns are NOT
    NULL), native-endian."""
    values = np.frombuffer(raw, dtype=dtype, offset=_ARRAY_HEADER)["v"]
    return values.astype(values.dtype.newbyteorder("="))


def _ns(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def _ts_text(ns: int) -> str:
    seconds, rest = divmod(int(ns), 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp}.{rest // 1000:06d}+00"


_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_BINARY_TRAILER = struct.pack(">h", -1)


def encode_values(symbols: Sequence[str], timeframe: str, names: Sequence[str],
                  rows: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], I64, F64]
                  ) -> tuple[bytes, int]:
    """Binary COPY rows ``(symbol, timeframe, ts, name, value)`` for ``indicator_values``.

    ``rows`` are parallel arrays: index into ``symbols``, index into ``names``, bar start (ns),
    value (NaN rows are left out). Built with numpy from the indexes, no string operation per
    row: rows are grouped by (symbol length, name length) so each group is one fixed-width
    structured array (a handful of groups per batch, whatever its size)."""
    sym_idx, name_idx, ts_ns, values = rows
    keep = ~np.isnan(values)
    sym_idx, name_idx, ts_ns, values = sym_idx[keep], name_idx[keep], ts_ns[keep], values[keep]
    if not len(values):
        return b"", 0
    tf = timeframe.encode()
    sym_bytes = [s.encode() for s in symbols]
    name_bytes = [n.encode() for n in names]
    sym_len = np.array([len(b) for b in sym_bytes], dtype=np.int64)[sym_idx]
    name_len = np.array([len(b) for b in name_bytes], dtype=np.int64)[name_idx]
    group = sym_len * 1024 + name_len
    us = ts_ns // 1000 - _PG_EPOCH_US
    parts = [_BINARY_HEADER]
    for g in np.unique(group).tolist():
        a, b = divmod(int(g), 1024)
        rows_g = np.flatnonzero(group == g)
        dtype = np.dtype([("n", ">i2"), ("l0", ">i4"), ("sym", f"S{a}"), ("l1", ">i4"),
                          ("tf", f"S{len(tf)}"), ("l2", ">i4"), ("ts", ">i8"),
                          ("l3", ">i4"), ("name", f"S{b}"), ("l4", ">i4"), ("v", ">f8")])
        block = np.empty(len(rows_g), dtype=dtype)
        block["n"], block["l0"], block["l1"], block["l2"] = 5, a, len(tf), 8
        block["l3"], block["l4"] = b, 8
        # Fixed-width byte strings of every symbol / name; only those of length a / b are read.
        block["sym"] = np.array(sym_bytes, dtype=f"S{a}")[sym_idx[rows_g]]
        block["tf"] = tf
        block["ts"] = us[rows_g]
        block["name"] = np.array(name_bytes, dtype=f"S{b}")[name_idx[rows_g]]
        block["v"] = values[rows_g]
        parts.append(block.tobytes())
    parts.append(_BINARY_TRAILER)
    return b"".join(parts), len(values)


def write_indicator_values(conn: psycopg.Connection[Any], data: bytes) -> None:
    """Upsert binary COPY rows made by ``encode_values``."""
    if data:
        _upsert(conn, "indicator_values", ("symbol", "timeframe", "ts", "name", "value"),
                key=("symbol", "timeframe", "name", "ts"), updated=("value",), data=data,
                binary=True)


def write_detections(conn: psycopg.Connection[Any], rows: Iterable[dict[str, Any]]) -> int:
    """Upsert pattern detections (keys of ``pattern_detections`` columns; ``ts`` in ns)."""
    buf = io.StringIO()
    count = 0
    for r in rows:
        strength = "\\N" if r["strength"] is None or math.isnan(r["strength"]) else \
            repr(float(r["strength"]))
        agrees = "\\N" if r["daily_agrees"] is None else ("t" if r["daily_agrees"] else "f")
        buf.write("\t".join((
            r["symbol"], r["timeframe"], _ts_text(r["ts"]), r["pattern"], r["direction"],
            strength, repr(float(r["confidence"])), _json(r["levels"]), _json(r["evidence"]),
            agrees, "batch")) + "\n")
        count += 1
    if count:
        _upsert(conn, "pattern_detections",
                ("symbol", "timeframe", "ts", "pattern", "direction", "strength", "confidence",
                 "levels", "evidence", "daily_agrees", "source"),
                key=("symbol", "timeframe", "pattern", "ts"),
                updated=("direction", "strength", "confidence", "levels", "evidence",
                         "daily_agrees"),
                data=buf.getvalue())
    return count


def _json(value: dict[str, float]) -> str:
    return orjson.dumps(value).decode().replace("\\", "\\\\")


def _upsert(conn: psycopg.Connection[Any], table: str, columns: tuple[str, ...], *,
            key: tuple[str, ...], updated: tuple[str, ...], data: str | bytes,
            binary: bool = False) -> None:
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    fmt = sql.SQL(" (FORMAT BINARY)" if binary else "")
    with conn.transaction(), conn.cursor() as cur:
        try:
            with conn.transaction():  # savepoint: the straight COPY, the common daily case
                with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN{}").format(
                        sql.Identifier(table), cols, fmt)) as copy:
                    copy.write(data)
                return
        except psycopg.errors.UniqueViolation:
            pass  # a batch redone after a crash: stage and upsert
        stage = sql.Identifier(f"{table}_incoming")
        cur.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) "
                            "ON COMMIT DELETE ROWS").format(stage, sql.Identifier(table)))
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN{}").format(stage, cols, fmt)) as copy:
            copy.write(data)
        sets = sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in updated)
        cur.execute(sql.SQL(
            "INSERT INTO {t} ({cols}) SELECT {cols} FROM {s} ON CONFLICT ({key}) DO UPDATE "
            "SET {sets}").format(t=sql.Identifier(table), cols=cols, s=stage,
                                 key=sql.SQL(", ").join(map(sql.Identifier, key)), sets=sets))


def read_watermarks(conn: psycopg.Connection[Any], symbols: Sequence[str], *, timeframe: str,
                    kind: str) -> dict[str, int]:
    """Per symbol, the newest bar (ns) whose ``kind`` results are stored."""
    with conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
        rows = cur.execute(
            "SELECT symbol, last_ts FROM analysis_watermarks WHERE timeframe = %s AND kind = %s"
            " AND symbol = ANY(%s)", (timeframe, kind, list(symbols))).fetchall()
    return {sym: _ns(ts) for sym, ts in rows}


def read_values_at(conn: psycopg.Connection[Any], at: Mapping[str, int], timeframe: str,
                   names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per symbol, the stored values of ``names`` on its bar ``at[symbol]`` (ns)."""
    with conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
        rows = cur.execute(
            "SELECT v.symbol, v.name, v.value FROM unnest(%s::text[], %s::timestamptz[]) AS m(s, t)"
            " JOIN indicator_values v ON v.symbol = m.s AND v.timeframe = %s AND v.ts = m.t"
            " AND v.name = ANY(%s)",
            (list(at), [_dt(ns) for ns in at.values()], timeframe, list(names))).fetchall()
    out: dict[str, dict[str, float]] = {}
    for symbol, name, value in rows:
        out.setdefault(symbol, {})[name] = value
    return out


def write_watermarks(conn: psycopg.Connection[Any], marks: dict[str, int], *, timeframe: str,
                     kind: str) -> None:
    if not marks:
        return
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO analysis_watermarks (symbol, timeframe, kind, last_ts)"
            " SELECT s, %s, %s, t FROM unnest(%s::text[], %s::timestamptz[]) AS u(s, t)"
            " ON CONFLICT (symbol, timeframe, kind) DO UPDATE SET last_ts = EXCLUDED.last_ts,"
            " updated_at = now()",
            (timeframe, kind, list(marks), [_dt(ns) for ns in marks.values()]))


def _dt(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(
        microsecond=(ns % 1_000_000_000) // 1000)
