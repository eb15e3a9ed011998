"""The ``bars`` table: bulk idempotent writes, coverage for top-ups, reads as numpy arrays.

Writes go through binary COPY built with numpy (no per-row Python): optimistically straight
into ``bars`` inside a savepoint (the common case: a top-up writes only new bars), and, when a
row already exists, through a temporary table and ``INSERT .. ON CONFLICT (symbol, timeframe,
ts) DO UPDATE`` that touches only rows whose values differ. Either way a re-run changes nothing
and never duplicates a row. Reads use binary COPY out, parsed with one ``np.frombuffer``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from tickstock.contracts.common import Timeframe
from tickstock.core.errors import StoreError
from tickstock.store import metrics

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970-01-01
_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)
_COLUMNS = ("symbol", "timeframe", "ts", "open", "high", "low", "close", "volume", "vwap",
            "trades", "source")
_VALUES = ("open", "high", "low", "close", "volume", "vwap", "trades")


class BarColumns(Protocol):
    """What ``write_bars`` takes: one symbol/timeframe as numpy columns (``market.BarFrame``)."""

    @property
    def symbol(self) -> str: ...
    @property
    def timeframe(self) -> Timeframe: ...
    @property
    def ts(self) -> I64: ...  # ns since the epoch, UTC, bar start
    @property
    def open(self) -> F64: ...
    @property
    def high(self) -> F64: ...
    @property
    def low(self) -> F64: ...
    @property
    def close(self) -> F64: ...
    @property
    def volume(self) -> F64: ...
    @property
    def vwap(self) -> F64: ...  # NaN = NULL
    @property
    def trades(self) -> I64: ...  # -1 = NULL


@dataclass(frozen=True, slots=True)
class WriteResult:
    rows: int  # rows offered
    written: int  # rows inserted or changed; rows - written were already stored as given


@dataclass(frozen=True, eq=False)
class StoredBars:
    """Bars read back: parallel arrays, oldest first; ``symbol`` set for multi-symbol reads."""

    ts: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    vwap: F64
    trades: I64
    symbol: npt.NDArray[np.str_] | None = None

    def __len__(self) -> int:
        return len(self.ts)


@dataclass(frozen=True, slots=True)
class Coverage:
    """The stored span of one symbol/timeframe: first and last bar start."""

    first: datetime
    last: datetime


# -- encoding --------------------------------------------------------------------------------


def _text_field(value: str) -> tuple[str, str]:
    return f"S{max(len(value.encode()), 1)}", value


def encode_copy(frames: Iterable[BarColumns], source: str) -> tuple[bytes, int]:
    """PostgreSQL binary COPY data for ``frames`` (columns ``_COLUMNS``), and the row count."""
    parts = [_HEADER]
    rows = 0
    for frame in frames:
        n = len(frame.ts)
        if n == 0:
            continue
        rows += n
        vwap_null = ~np.isfinite(frame.vwap)
        trades_null = frame.trades < 0
        # NULL changes a row's byte layout: encode each layout separately (order is irrelevant)
        for vn in (False, True):
            for tn in (False, True):
                mask = (vwap_null == vn) & (trades_null == tn)
                if mask.any():
                    parts.append(_encode_block(frame, source, mask, vn, tn))
    parts.append(_TRAILER)
    return b"".join(parts), rows


def _encode_block(
    frame: BarColumns, source: str, mask: npt.NDArray[np.bool_], vwap_null: bool,
    trades_null: bool,
) -> bytes:
    sym = frame.symbol.encode()
    tf = frame.timeframe.value.encode()
    src = source.encode()
    fields: list[tuple[str, str]] = [("n", ">i2")]
    for name, width in (("sym", len(sym)), ("tf", len(tf))):
        fields += [(f"l_{name}", ">i4"), (name, f"S{width}")]
    fields += [("l_ts", ">i4"), ("ts", ">i8")]
    for name in ("open", "high", "low", "close", "volume"):
        fields += [(f"l_{name}", ">i4"), (name, ">f8")]
    fields += [("l_vwap", ">i4")] + ([] if vwap_null else [("vwap", ">f8")])
    fields += [("l_trades", ">i4")] + ([] if trades_null else [("trades", ">i4")])
    fields += [("l_src", ">i4"), ("src", f"S{len(src)}")]
    block = np.empty(int(mask.sum()), dtype=np.dtype(fields))
    block["n"] = len(_COLUMNS)
    block["l_sym"], block["sym"] = len(sym), sym
    block["l_tf"], block["tf"] = len(tf), tf
    block["l_ts"], block["ts"] = 8, frame.ts[mask] // 1000 - _PG_EPOCH_US
    for name in ("open", "high", "low", "close", "volume"):
        block[f"l_{name}"], block[name] = 8, getattr(frame, name)[mask]
    block["l_vwap"] = -1 if vwap_null else 8
    if not vwap_null:
        block["vwap"] = frame.vwap[mask]
    block["l_trades"] = -1 if trades_null else 4
    if not trades_null:
        block["trades"] = frame.trades[mask]
    block["l_src"], block["src"] = len(src), src
    return block.tobytes()


# -- writing ---------------------------------------------------------------------------------

_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS bars_incoming (LIKE bars INCLUDING DEFAULTS)
ON COMMIT DELETE ROWS
"""
_UPSERT = """
INSERT INTO bars (symbol, timeframe, ts, open, high, low, close, volume, vwap, trades, source)
SELECT symbol, timeframe, ts, open, high, low, close, volume, vwap, trades, source
FROM bars_incoming
ON CONFLICT (symbol, timeframe, ts) DO UPDATE SET
    open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
    volume = EXCLUDED.volume, vwap = EXCLUDED.vwap, trades = EXCLUDED.trades,
    source = EXCLUDED.source, ingested_at = now()
WHERE (bars.open, bars.high, bars.low, bars.close, bars.volume, bars.vwap, bars.trades)
      IS DISTINCT FROM
      (EXCLUDED.open, EXCLUDED.high, EXCLUDED.low, EXCLUDED.close, EXCLUDED.volume,
       EXCLUDED.vwap, EXCLUDED.trades)
"""


def _copy(cur: psycopg.Cursor[Any], table: str, data: bytes) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)))
    with cur.copy(statement) as copy:
        copy.write(data)


def write_bars(
    conn: psycopg.Connection[Any], frames: Sequence[BarColumns], source: str
) -> WriteResult:
    """Upsert ``frames`` in one transaction: all rows or none. Returns what changed."""
    data, rows = encode_copy(frames, source)
    if rows == 0:
        return WriteResult(0, 0)
    try:
        with conn.transaction(), conn.cursor() as cur:
            try:
                with conn.transaction():  # savepoint: the optimistic straight COPY
                    _copy(cur, "bars", data)
                return _counted(source, WriteResult(rows, rows))
            except psycopg.errors.UniqueViolation:
                pass  # some rows exist: stage and upsert
            cur.execute(_STAGE)
            _copy(cur, "bars_incoming", data)
            cur.execute(_UPSERT)
            written = max(cur.rowcount, 0)
            return _counted(source, WriteResult(rows, written))
    except psycopg.errors.CheckViolation as exc:
        raise StoreError(f"bars refused by a check ({exc.diag.constraint_name}): "
                         f"{exc.diag.message_primary}") from exc


def _counted(source: str, result: WriteResult) -> WriteResult:
    metrics.BARS_INGESTED.labels(source).inc(result.rows)
    metrics.BARS_CHANGED.labels(source).inc(result.written)
    return result


def insert_new(
    conn: psycopg.Connection[Any], frames: Sequence[BarColumns], source: str
) -> WriteResult | None:
    """COPY rows of which none is stored yet, in one transaction; None (and nothing written)
    when some row is stored already, so the caller can upsert piece by piece instead."""
    data, rows = encode_copy(frames, source)
    if rows == 0:
        return WriteResult(0, 0)
    try:
        with conn.transaction(), conn.cursor() as cur:
            _copy(cur, "bars", data)
    except psycopg.errors.UniqueViolation:
        return None
    except psycopg.errors.CheckViolation as exc:
        raise StoreError(f"bars refused by a check ({exc.diag.constraint_name}): "
                         f"{exc.diag.message_primary}") from exc
    return _counted(source, WriteResult(rows, rows))


# -- reading ---------------------------------------------------------------------------------

_READ_DTYPE = np.dtype([
    ("n", ">i2"), ("l0", ">i4"), ("ts", ">i8"), ("l1", ">i4"), ("open", ">f8"),
    ("l2", ">i4"), ("high", ">f8"), ("l3", ">i4"), ("low", ">f8"), ("l4", ">i4"),
    ("close", ">f8"), ("l5", ">i4"), ("volume", ">f8"), ("l6", ">i4"), ("vwap", ">f8"),
    ("l7", ">i4"), ("trades", ">i8"),
])
_SELECT = ("ts, open, high, low, close, volume, coalesce(vwap, 'NaN'::float8), "
           "coalesce(trades, -1)::bigint")


def _read(conn: psycopg.Connection[Any], query: sql.Composable, params: Sequence[Any]) -> StoredBars:
    statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT BINARY)").format(query)
    buffer = bytearray()
    with conn.cursor() as cur, cur.copy(statement, params) as copy:
        for chunk in copy:
            buffer += chunk
    body = bytes(buffer[len(_HEADER):-2])
    arr = np.frombuffer(body, dtype=_READ_DTYPE)
    ts = (arr["ts"].astype(np.int64) + _PG_EPOCH_US) * 1000
    f = [arr[name].astype(np.float64) for name in ("open", "high", "low", "close", "volume",
                                                    "vwap")]
    return StoredBars(ts, f[0], f[1], f[2], f[3], f[4], f[5], arr["trades"].astype(np.int64))


def bars_between(
    conn: psycopg.Connection[Any], symbol: str, timeframe: Timeframe, start: datetime,
    end: datetime,
) -> StoredBars:
    """Bars of one symbol with ``start <= ts < end``, oldest first."""
    query = sql.SQL("SELECT " + _SELECT + " FROM bars WHERE symbol = %s AND timeframe = %s "
                    "AND ts >= %s AND ts < %s ORDER BY ts")
    return _read(conn, query, (symbol, timeframe.value, start, end))


def last_bars(
    conn: psycopg.Connection[Any], symbol: str, timeframe: Timeframe, n: int,
    before: datetime | None = None,
) -> StoredBars:
    """The last ``n`` bars of one symbol (before ``before`` if given), oldest first."""
    limit = datetime(9999, 1, 1, tzinfo=UTC) if before is None else before
    query = sql.SQL("SELECT * FROM (SELECT " + _SELECT + " FROM bars WHERE symbol = %s AND "
                    "timeframe = %s AND ts < %s ORDER BY ts DESC LIMIT %s) t ORDER BY 1")
    return _read(conn, query, (symbol, timeframe.value, limit, n))


def bars_at(
    conn: psycopg.Connection[Any], timeframe: Timeframe, ts: datetime,
    symbols: Sequence[str] | None = None,
) -> StoredBars:
    """Every symbol's bar starting at ``ts`` (optionally only ``symbols``), by symbol."""
    where = "" if symbols is None else " AND symbol = ANY(%s)"
    params: list[Any] = [timeframe.value, ts] + ([] if symbols is None else [list(symbols)])
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(
            "SELECT symbol, " + _SELECT + " FROM bars WHERE timeframe = %s AND ts = %s"
            + where + " ORDER BY symbol", params).fetchall()
    return _from_rows(rows)


def _from_rows(rows: list[tuple[Any, ...]]) -> StoredBars:
    cols = list(zip(*rows, strict=True)) if rows else [()] * 9
    ts = np.array([(t - datetime(1970, 1, 1, tzinfo=UTC)) // _US * 1000 for t in cols[1]],
                  dtype=np.int64)
    f = [np.array(cols[i], dtype=np.float64) for i in range(2, 8)]
    return StoredBars(ts, f[0], f[1], f[2], f[3], f[4], f[5], np.array(cols[8], dtype=np.int64),
                      symbol=np.array(cols[0], dtype=str))


_US = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)


def coverage(
    conn: psycopg.Connection[Any], timeframe: Timeframe, symbols: Sequence[str]
) -> dict[str, Coverage]:
    """First and last stored bar of each symbol (symbols with no bars are absent)."""
    query = """
    SELECT s.symbol,
      (SELECT ts FROM bars b WHERE b.symbol = s.symbol AND b.timeframe = %(tf)s
       ORDER BY ts ASC LIMIT 1) AS first,
      (SELECT ts FROM bars b WHERE b.symbol = s.symbol AND b.timeframe = %(tf)s
       ORDER BY ts DESC LIMIT 1) AS last
    FROM unnest(%(symbols)s::text[]) AS s(symbol)
    """
    with conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(query, {"tf": timeframe.value, "symbols": list(symbols)}).fetchall()
    return {sym: Coverage(first, last) for sym, first, last in rows if first is not None}


def count_bars(conn: psycopg.Connection[Any], timeframe: Timeframe, symbol: str | None = None) -> int:
    with conn.cursor(row_factory=tuple_row) as cur:
        if symbol is None:
            row = cur.execute("SELECT count(*) FROM bars WHERE timeframe = %s",
                              (timeframe.value,)).fetchone()
        else:
            row = cur.execute("SELECT count(*) FROM bars WHERE timeframe = %s AND symbol = %s",
                              (timeframe.value, symbol)).fetchone()
    return int(row[0]) if row else 0
