"""Live bars in and out of the ``bars`` table.

A burst is one bar for each of thousands of symbols, across timeframes, and nearly all of them
are new: the processor drops a minute at or before a symbol's last one and stores only closed
bars. So a burst is first COPYed (binary) straight into ``bars``, under a savepoint: for 5,000
new minutes into a ``bars`` of 2.25M rows that cost the PostgreSQL backend 40 ms of CPU, where
a COPY into a temporary table and an ``INSERT … SELECT … ON CONFLICT DO UPDATE`` from it cost
70 ms. A bar already stored (a reconnect, a repair overlapping a live minute, a restart storing
a derived bar again, a failed write retried) or a key twice in one burst makes that COPY fail
with a unique violation; the savepoint is rolled back and the whole burst takes the upsert path,
so a bar received twice is still one row, holding the values received last.
Warm-up reads the last N bars of many symbols in one query. Live pattern detections are
upserted into ``pattern_detections`` the same way the nightly run writes its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import Connection, sql
from psycopg.errors import UniqueViolation
from psycopg_pool import ConnectionPool

from tickstock.contracts.common import Timeframe
from tickstock.core.errors import StoreError
from tickstock.market.bars import INTRADAY_MINUTES, datetime_to_ns
from tickstock.pipeline.stream.bars import DetectionEvent, LiveBar
from tickstock.store.analysis import write_detections

LIVE_SOURCE = "live"
_COLUMNS = ("symbol", "timeframe", "ts", "open", "high", "low", "close", "volume", "vwap",
            "trades", "source")
#: The ``bars`` columns' types (migration 0001). Binary COPY needs them exactly -- a type
#: changed by a migration fails every store test -- and costs a quarter of the text format,
#: where psycopg and the server spent more of a burst's store than the upsert itself.
_COPY_TYPES = ("text", "text", "timestamptz", "float8", "float8", "float8", "float8", "float8",
               "float8", "int4", "text")
_COLUMN_LIST = sql.SQL(", ").join(map(sql.Identifier, _COLUMNS))
#: An upserted bar takes every value column of the batch's bar (``source`` included).
_UPDATES = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c))
                              for c in _COLUMNS[3:])


class BarStore:
    """Upserts live bars and reads stored ones back, through ``pool``."""

    def __init__(self, pool: ConnectionPool, source: str = LIVE_SOURCE) -> None:
        self.pool = pool
        self.source = source

    def upsert(self, bars: Sequence[LiveBar], *, fresh: bool = True) -> dict[str, int]:
        """Store ``bars`` (any symbols and timeframes) in one transaction; counts by timeframe.

        New bars -- the common case -- are COPYed straight into ``bars`` (the module docstring
        has the cost of each path); a batch holding any bar already stored, or a key twice, is
        upserted whole instead: an existing row takes the batch's values, and of one key given
        twice the later bar wins. ``fresh`` false says the caller expects some to be stored
        already (a restart storing again what it rebuilt): upserted at once, without a COPY
        that would fail (and leave a unique-violation ERROR in PostgreSQL's log).
        """
        if not bars:
            return {}
        try:
            with self.pool.connection() as conn, conn.transaction():
                if not (fresh and self._copied_new(conn, bars)):
                    self._upsert_through_temp(conn, bars)
        except Exception as exc:  # psycopg.Error, pool timeout
            raise StoreError(f"storing {len(bars)} live bars failed: {exc}") from exc
        return dict(Counter(b.timeframe.value for b in bars))

    def _copied_new(self, conn: Connection[Any], bars: Sequence[LiveBar]) -> bool:
        """COPY ``bars`` straight into ``bars``; False, with nothing stored, when one of them
        is stored already (or a key repeats)."""
        try:
            with conn.transaction():  # a savepoint: the failed COPY leaves nothing
                self._copy(conn, "bars", bars)
        except UniqueViolation:
            return False
        return True

    def _upsert_through_temp(self, conn: Connection[Any], bars: Sequence[LiveBar]) -> None:
        # ON CONFLICT DO UPDATE may not touch one row twice in a statement, so one bar a key,
        # the last given (a dict keeps the last value of a key)
        latest = {(b.symbol, b.timeframe, b.start): b for b in bars}
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS live_bars_in "
                     "(LIKE bars INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
        self._copy(conn, "live_bars_in", list(latest.values()))
        conn.execute(sql.SQL(
            "INSERT INTO bars ({cols}) SELECT {cols} FROM live_bars_in "
            "ON CONFLICT (symbol, timeframe, ts) DO UPDATE SET {updates}"
        ).format(cols=_COLUMN_LIST, updates=_UPDATES))

    def _copy(self, conn: Connection[Any], table: str, bars: Sequence[LiveBar]) -> None:
        """COPY ``bars`` (binary) into ``table``, which has the ``bars`` columns."""
        with conn.cursor().copy(
            sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
                sql.Identifier(table), _COLUMN_LIST)
        ) as copy:
            copy.set_types(_COPY_TYPES)
            for b in bars:
                copy.write_row((b.symbol, b.timeframe.value, b.start, b.open, b.high,
                                b.low, b.close, b.volume, b.vwap, b.trades, self.source))

    def last_minute(self, symbols: Sequence[str]) -> datetime | None:
        """Start of the newest stored minute bar of any of ``symbols`` (None when none)."""
        try:
            with self.pool.connection() as conn:
                row = conn.execute(
                    "SELECT max(ts) AS newest FROM bars WHERE timeframe = %s AND symbol = ANY(%s)",
                    (Timeframe.MIN1.value, list(symbols))).fetchone()
        except Exception as exc:
            raise StoreError(f"reading the newest stored minute failed: {exc}") from exc
        if row is None:
            return None
        newest: datetime | None = row["newest"] if isinstance(row, dict) else row[0]
        return newest

    def last_bars(self, symbols: Sequence[str], timeframe: Timeframe, count: int,
                  before: datetime | None = None) -> dict[str, list[LiveBar]]:
        """The last ``count`` stored bars of each symbol (oldest first), optionally only those
        starting before ``before``."""
        if not symbols or count <= 0:
            return {}
        query = """
            SELECT b.symbol, b.ts, b.open, b.high, b.low, b.close, b.volume, b.vwap, b.trades
            FROM unnest(%(symbols)s::text[]) AS s(symbol)
            CROSS JOIN LATERAL (
                SELECT * FROM bars
                WHERE bars.symbol = s.symbol AND timeframe = %(tf)s
                  AND (%(before)s::timestamptz IS NULL OR ts < %(before)s::timestamptz)
                ORDER BY ts DESC LIMIT %(count)s
            ) AS b
            ORDER BY b.symbol, b.ts
        """
        return self._read(query, {"symbols": list(symbols), "tf": timeframe.value,
                                  "count": count, "before": before}, timeframe)

    def bars_between(self, symbols: Sequence[str], timeframe: Timeframe, start: datetime,
                     end: datetime) -> dict[str, list[LiveBar]]:
        """Stored bars of ``symbols`` with ``start <= ts < end``, oldest first."""
        if not symbols:
            return {}
        query = """
            SELECT symbol, ts, open, high, low, close, volume, vwap, trades FROM bars
            WHERE symbol = ANY(%(symbols)s) AND timeframe = %(tf)s
              AND ts >= %(start)s AND ts < %(end)s
            ORDER BY symbol, ts
        """
        return self._read(query, {"symbols": list(symbols), "tf": timeframe.value,
                                  "start": start, "end": end}, timeframe)

    def _read(self, query: str, params: dict[str, object],
              timeframe: Timeframe) -> dict[str, list[LiveBar]]:
        out: dict[str, list[LiveBar]] = {}
        length = timedelta(minutes=INTRADAY_MINUTES.get(timeframe, 1440))
        try:
            with self.pool.connection() as conn, conn.cursor() as cur:
                cur.execute(query, params)
                rows = cur.fetchall()
        except Exception as exc:
            raise StoreError(f"reading stored {timeframe.value} bars failed: {exc}") from exc
        for row in rows:
            r = row if isinstance(row, dict) else dict(zip(
                ("symbol", "ts", "open", "high", "low", "close", "volume", "vwap", "trades"),
                row, strict=True))
            # ``end`` is the nominal one: a session's last derived bar may really end earlier
            out.setdefault(r["symbol"], []).append(LiveBar(
                r["symbol"], timeframe, r["ts"], r["ts"] + length, r["open"], r["high"], r["low"],
                r["close"], r["volume"], r["vwap"], r["trades"]))
        return out


@dataclass(frozen=True, slots=True)
class _DetectionRow:
    """A live detection in the shape ``store.analysis.write_detections`` reads."""

    symbol: str
    timeframe: str
    ts_ns: int
    pattern: str
    direction: str
    strength: float
    confidence: float
    levels: Mapping[str, float]
    evidence: Mapping[str, float]
    daily_agrees: bool | None


class DetectionStore:
    """Upserts live pattern detections into ``pattern_detections`` (``source`` live), so the
    screener and the symbol pages see today's patterns before the nightly run."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def write(self, detections: Sequence[DetectionEvent]) -> None:
        """Upsert ``detections`` with their evidence, as the nightly run stores its own."""
        rows = [_DetectionRow(d.symbol, d.timeframe.value, datetime_to_ns(d.ts), d.pattern,
                              d.direction.value, d.strength if d.strength is not None else 0.0,
                              d.confidence, d.levels, d.evidence, d.daily_agrees)
                for d in detections]
        try:
            with self.pool.connection() as conn:
                write_detections(conn, rows, source="live")
        except Exception as exc:
            raise StoreError(f"storing {len(rows)} live detections failed: {exc}") from exc
