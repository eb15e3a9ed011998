"""Market data as pages show it: universes, bars, indicators, detections, movers, breadth."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tickstock.core.errors import NotFoundError
from tickstock.web.config import Pool

MAX_BARS = 5000


def universe_symbols(pool: Pool, universe: str) -> frozenset[str]:
    """Members of ``universe``; NotFoundError when it does not exist."""
    with pool.connection() as db:
        exists = db.execute("SELECT 1 FROM universes WHERE name = %s", (universe,)).fetchone()
        if exists is None:
            raise NotFoundError(f"no universe named {universe!r}")
        rows = db.execute(
            "SELECT symbol FROM universe_members WHERE universe = %s", (universe,)).fetchall()
    return frozenset(r["symbol"] for r in rows)


def list_universes(pool: Pool) -> list[dict[str, Any]]:
    with pool.connection() as db:
        rows = db.execute(
            "SELECT u.name, u.kind, u.description, count(m.symbol) AS members "
            "FROM universes u LEFT JOIN universe_members m ON m.universe = u.name "
            "GROUP BY u.name ORDER BY u.name").fetchall()
    return [dict(r) for r in rows]


def symbol_info(pool: Pool, symbol: str) -> dict[str, Any] | None:
    with pool.connection() as db:
        row = db.execute(
            "SELECT symbol, name, exchange, asset_type, sector, active FROM symbols "
            "WHERE symbol = %s", (symbol,)).fetchone()
    return None if row is None else dict(row)


def search_symbols(pool: Pool, prefix: str, limit: int = 20) -> list[dict[str, Any]]:
    pattern = prefix.upper().replace("%", "").replace("_", r"\_") + "%"
    with pool.connection() as db:
        rows = db.execute(
            "SELECT symbol, name FROM symbols WHERE symbol LIKE %s OR upper(name) LIKE %s "
            "ORDER BY symbol LIMIT %s", (pattern, "%" + pattern, limit)).fetchall()
    return [dict(r) for r in rows]


def bars(pool: Pool, symbol: str, timeframe: str, *, start: datetime | None = None,
         end: datetime | None = None, limit: int = 500) -> list[dict[str, Any]]:
    """The last ``limit`` bars in ``[start, end)``, oldest first."""
    limit = max(1, min(limit, MAX_BARS))
    with pool.connection() as db:
        rows = db.execute(
            "SELECT ts, open, high, low, close, volume, vwap FROM bars "
            "WHERE symbol = %s AND timeframe = %s AND ts >= coalesce(%s::timestamptz, '-infinity') "
            "AND ts < coalesce(%s::timestamptz, 'infinity') ORDER BY ts DESC LIMIT %s",
            (symbol, timeframe, start, end, limit)).fetchall()
    return [dict(r) for r in reversed(rows)]


def indicator_series(pool: Pool, symbol: str, timeframe: str, names: list[str],
                     *, start: datetime, end: datetime | None = None) -> dict[str, list[Any]]:
    """``{name: [[ts, value], ...]}`` for the named indicators over ``[start, end)``."""
    if not names:
        return {}
    with pool.connection() as db:
        rows = db.execute(
            "SELECT name, ts, value FROM indicator_values WHERE symbol = %s AND timeframe = %s "
            "AND name = ANY(%s) AND ts >= %s AND ts < coalesce(%s::timestamptz, 'infinity') "
            "ORDER BY name, ts",
            (symbol, timeframe, names, start, end)).fetchall()
    out: dict[str, list[Any]] = {n: [] for n in names}
    for r in rows:
        out[r["name"]].append([r["ts"], r["value"]])
    return out


def latest_indicators(pool: Pool, symbol: str, timeframe: str) -> list[dict[str, Any]]:
    """The newest value of every indicator of a symbol: ``[{name, ts, value}]`` by name."""
    with pool.connection() as db:
        rows = db.execute(
            "SELECT DISTINCT ON (name) name, ts, value FROM indicator_values "
            "WHERE symbol = %s AND timeframe = %s ORDER BY name, ts DESC",
            (symbol, timeframe)).fetchall()
    return [dict(r) for r in rows]


def indicator_names(pool: Pool, timeframe: str) -> list[str]:
    """Indicator names present for ``timeframe`` (a loose index scan: fast on big tables)."""
    with pool.connection() as db:
        rows = db.execute(
            "WITH RECURSIVE n AS ("
            " (SELECT name FROM indicator_values WHERE timeframe = %(tf)s ORDER BY name LIMIT 1)"
            " UNION ALL SELECT (SELECT name FROM indicator_values WHERE timeframe = %(tf)s "
            "  AND name > n.name ORDER BY name LIMIT 1) FROM n WHERE n.name IS NOT NULL)"
            " SELECT name FROM n WHERE name IS NOT NULL", {"tf": timeframe}).fetchall()
    return [r["name"] for r in rows]


@dataclass(frozen=True, slots=True)
class DetectionQuery:
    symbol: str | None = None
    universe: str | None = None
    patterns: tuple[str, ...] = ()
    direction: str | None = None
    timeframe: str | None = None
    min_confidence: float = 0.0
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100


def detections(pool: Pool, q: DetectionQuery) -> list[dict[str, Any]]:
    """Pattern detections, newest first, narrowed by ``q``."""
    where = ["confidence >= %(conf)s"]
    args: dict[str, Any] = {"conf": q.min_confidence, "limit": max(1, min(q.limit, 2000))}
    if q.symbol:
        where.append("d.symbol = %(symbol)s")
        args["symbol"] = q.symbol
    if q.universe:
        where.append("d.symbol IN (SELECT symbol FROM universe_members WHERE universe = %(u)s)")
        args["u"] = q.universe
    if q.patterns:
        where.append("pattern = ANY(%(patterns)s)")
        args["patterns"] = list(q.patterns)
    if q.direction:
        where.append("direction = %(direction)s")
        args["direction"] = q.direction
    if q.timeframe:
        where.append("timeframe = %(tf)s")
        args["tf"] = q.timeframe
    if q.since:
        where.append("ts >= %(since)s")
        args["since"] = q.since
    if q.until:
        where.append("ts < %(until)s")
        args["until"] = q.until
    sql = ("SELECT d.symbol, timeframe, ts, pattern, direction, confidence, strength, levels, "
           "daily_agrees, source, detected_at FROM pattern_detections d WHERE "
           + " AND ".join(where) + " ORDER BY ts DESC, symbol LIMIT %(limit)s")
    with pool.connection() as db:
        return [dict(r) for r in db.execute(sql, args).fetchall()]


def pattern_names(pool: Pool) -> list[str]:
    with pool.connection() as db:
        rows = db.execute(
            "WITH RECURSIVE n AS ((SELECT pattern FROM pattern_detections ORDER BY pattern LIMIT 1)"
            " UNION ALL SELECT (SELECT pattern FROM pattern_detections WHERE pattern > n.pattern "
            " ORDER BY pattern LIMIT 1) FROM n WHERE n.pattern IS NOT NULL)"
            " SELECT pattern FROM n WHERE pattern IS NOT NULL").fetchall()
    return [r["pattern"] for r in rows]


def outcomes(pool: Pool, patterns: list[str], timeframe: str) -> list[dict[str, Any]]:
    """Outcome statistics of ``patterns`` (every universe and horizon the pipeline computed)."""
    if not patterns:
        return []
    with pool.connection() as db:
        rows = db.execute(
            "SELECT pattern, timeframe, universe, horizon_bars, period_start, period_end, "
            "occurrences, mean_return, median_return, p10_return, p90_return, hit_rate, "
            "computed_at FROM pattern_outcomes WHERE pattern = ANY(%s) AND timeframe = %s "
            "ORDER BY pattern, universe, horizon_bars", (patterns, timeframe)).fetchall()
    return [dict(r) for r in rows]


def _members_sql(universe: str | None) -> str:
    if universe:
        return "SELECT symbol FROM universe_members WHERE universe = %(u)s"
    return "SELECT symbol FROM symbols WHERE active"


def daily_changes(pool: Pool, universe: str | None) -> list[dict[str, Any]]:
    """Per symbol: last daily close, previous close, % change, 52-week high/low flags."""
    sql = (
        "SELECT m.symbol, last.ts, last.close, last.volume, prev.close AS prev_close, "
        " yr.hi, yr.lo FROM (" + _members_sql(universe) + ") m "
        "CROSS JOIN LATERAL (SELECT ts, close, high, low, volume FROM bars b WHERE "
        "  b.symbol = m.symbol AND b.timeframe = 'day' ORDER BY ts DESC LIMIT 1) last "
        "LEFT JOIN LATERAL (SELECT close FROM bars b WHERE b.symbol = m.symbol AND "
        "  b.timeframe = 'day' AND b.ts < last.ts ORDER BY ts DESC LIMIT 1) prev ON true "
        "LEFT JOIN LATERAL (SELECT max(high) AS hi, min(low) AS lo FROM bars b WHERE "
        "  b.symbol = m.symbol AND b.timeframe = 'day' AND b.ts < last.ts "
        "  AND b.ts >= last.ts - interval '365 days') yr ON true")
    with pool.connection() as db:
        rows = db.execute(sql, {"u": universe}).fetchall()
    out = []
    for r in rows:
        prev = r["prev_close"]
        change = (r["close"] / prev - 1.0) * 100.0 if prev else None
        out.append({"symbol": r["symbol"], "ts": r["ts"], "close": r["close"],
                    "volume": r["volume"], "prev_close": prev, "change_pct": change,
                    "new_high": r["hi"] is not None and r["close"] > r["hi"],
                    "new_low": r["lo"] is not None and r["close"] < r["lo"]})
    return out


def movers_and_breadth(pool: Pool, universe: str | None,
                       top: int = 10) -> dict[str, Any]:
    """Top gainers/losers and breadth (advancers, decliners, unchanged, new highs/lows)."""
    changes = [c for c in daily_changes(pool, universe) if c["change_pct"] is not None]
    ranked = sorted(changes, key=lambda c: c["change_pct"])
    return {
        "universe": universe,
        "as_of": max((c["ts"] for c in changes), default=None),
        "gainers": [c for c in reversed(ranked) if c["change_pct"] > 0][:top],
        "losers": [c for c in ranked if c["change_pct"] < 0][:top],
        "breadth": {
            "advancers": sum(1 for c in changes if c["change_pct"] > 0),
            "decliners": sum(1 for c in changes if c["change_pct"] < 0),
            "unchanged": sum(1 for c in changes if c["change_pct"] == 0),
            "new_highs": sum(1 for c in changes if c["new_high"]),
            "new_lows": sum(1 for c in changes if c["new_low"]),
            "symbols": len(changes),
        },
    }
