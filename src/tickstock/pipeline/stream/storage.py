"""Live bars in and out of the ``bars`` table.

A burst is one bar for each of thousands of symbols, across timeframes: one binary COPY into a
temporary table and one ``INSERT … ON CONFLICT DO UPDATE`` store them all, so a bar received
twice (a reconnect, a repair overlapping a live minute, a restart) is still one row.
Warm-up reads the last N bars of many symbols in one query. Live pattern detections are
upserted into ``pattern_detections`` the same way the nightly run writes its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import sql
from psycopg_pool import ConnectionPool

from tickstock.contracts.common import Timeframe
from tickstock.contracts.events import PatternDetected
from tickstock.core.errors import StoreError
from tickstock.market.bars import INTRADAY_MINUTES, datetime_to_ns
from tickstock.pipeline.stream.bars import LiveBar
from tickstock.store.analysis import write_detections

LIVE_SOURCE = "live"
_COLUMNS = ("symbol", "timeframe", "ts", "open", "high", "low", "close", "volume", "vwap",
            "trades", "source")
#: The ``bars`` columns' types (migration 0001). Binary COPY needs them exactly -- a type
#: changed by a migration fails every store test -- and costs a quarter of the text format,
#: where psycopg and the server spent more of a burst's store than the upsert itself.
_COPY_TYPES = ("text", "text", "timestamptz", "float8", "float8", "float8", "float8", "float8",
               "float8", "int4", "text")


class BarStore:
    """Upserts live bars and reads stored ones back, through ``pool``."""

    def __init__(self, pool: ConnectionPool, source: str = LIVE_SOURCE) -> None:
        self.pool = pool
        self.source = source

    def upsert(self, bars: Sequence[LiveBar]) -> dict[str, int]:
        """Store ``bars`` (any symbols and timeframes) in one transaction; counts by timeframe."""
        if not bars:
            return {}
        columns = sql.SQL(", ").join(map(sql.Identifier, _COLUMNS))
        updates = sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c))
            for c in _COLUMNS[3:]
        )
        try:
            with self.pool.connection() as conn, conn.transaction():
                conn.execute("CREATE TEMP TABLE IF NOT EXISTS live_bars_in "
                             "(LIKE bars INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
                with conn.cursor().copy(
                    sql.SQL("COPY live_bars_in ({}) FROM STDIN (FORMAT BINARY)").format(columns)
                ) as copy:
                    copy.set_types(_COPY_TYPES)
                    for b in bars:
                        copy.write_row((b.symbol, b.timeframe.value, b.start, b.open, b.high,
                                        b.low, b.close, b.volume, b.vwap, b.trades, self.source))
                conn.execute(sql.SQL(
                    "INSERT INTO bars ({cols}) SELECT DISTINCT ON (symbol, timeframe, ts) {cols} "
                    "FROM live_bars_in ORDER BY symbol, timeframe, ts "
                    "ON CONFLICT (symbol, timeframe, ts) DO UPDATE SET {updates}"
                ).format(cols=columns, updates=updates))
        except Exception as exc:  # psycopg.Error, pool timeout
            raise StoreError(f"storing {len(bars)} live bars failed: {exc}") from exc
        return dict(Counter(b.timeframe.value for b in bars))

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
    """A live ``PatternDetected`` in the shape ``store.analysis.write_detections`` reads."""

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

    def write(self, detections: Sequence[PatternDetected]) -> None:
        rows = [_DetectionRow(d.symbol, d.timeframe.value, datetime_to_ns(d.ts), d.pattern,
                              d.direction.value, d.strength if d.strength is not None else 0.0,
                              d.confidence, d.levels, {}, d.daily_agrees) for d in detections]
        try:
            with self.pool.connection() as conn:
                write_detections(conn, rows, source="live")
        except Exception as exc:
            raise StoreError(f"storing {len(rows)} live detections failed: {exc}") from exc
