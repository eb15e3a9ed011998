"""The screener: filter a universe by latest indicator values and recent patterns.

A screen is data (``ScreenDefinition``), validated at the edge and stored as JSON per user.
The query looks up, per member symbol, the newest value of each named indicator (a backward
primary-key scan each: cheap) and whether a matching pattern was detected recently.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field

from tickstock.contracts.common import Timeframe, UniverseName
from tickstock.web.config import Pool

IndicatorName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:\-]{1,128}$")]
OPS = {"<": "<", "<=": "<=", ">": ">", ">=": ">="}


class Condition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    indicator: IndicatorName
    op: Literal["<", "<=", ">", ">="]
    value: float = Field(allow_inf_nan=False)


class ScreenDefinition(BaseModel):
    """What to screen: a universe (or every active symbol), indicator conditions, patterns."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    universe: UniverseName | None = None
    timeframe: Timeframe = Timeframe.DAY
    conditions: tuple[Condition, ...] = Field(default=(), max_length=10)
    patterns: tuple[IndicatorName, ...] = Field(default=(), max_length=50)
    pattern_direction: Literal["bullish", "bearish", "neutral"] | None = None
    pattern_days: int = Field(default=5, ge=1, le=365)
    columns: tuple[IndicatorName, ...] = Field(default=(), max_length=10)
    sort: str = Field(default="symbol", pattern=r"^[A-Za-z0-9_.:\-]{1,128}$")
    descending: bool = False
    limit: int = Field(default=200, ge=1, le=2000)


def run_screen(pool: Pool, screen: ScreenDefinition) -> dict[str, Any]:
    """Rows ``{symbol, close, change_pct, <indicator>: value, patterns: [...]}`` that pass.

    "Recent" patterns are those within ``pattern_days`` before the symbol's newest bar, not
    before the wall clock: over data that stopped updating it still means its last N days.
    """
    indicators = list(dict.fromkeys([c.indicator for c in screen.conditions] + list(screen.columns)))
    members = (sql.SQL("SELECT symbol FROM universe_members WHERE universe = {}").format(
        sql.Literal(screen.universe)) if screen.universe
        else sql.SQL("SELECT symbol FROM symbols WHERE active"))
    selects: list[sql.Composable] = [sql.SQL("m.symbol, last.close, last.ts, "
                       "CASE WHEN prev.close > 0 THEN (last.close / prev.close - 1) * 100 END "
                       "AS change_pct")]
    joins: list[sql.Composable] = [sql.SQL(
        "LEFT JOIN LATERAL (SELECT ts, close FROM bars b WHERE b.symbol = m.symbol AND "
        "b.timeframe = {tf} ORDER BY ts DESC LIMIT 1) last ON true "
        "LEFT JOIN LATERAL (SELECT close FROM bars b WHERE b.symbol = m.symbol AND "
        "b.timeframe = {tf} AND b.ts < last.ts ORDER BY ts DESC LIMIT 1) prev ON true"
    ).format(tf=sql.Literal(screen.timeframe.value))]
    for i, name in enumerate(indicators):
        alias = sql.Identifier(f"i{i}")
        selects.append(sql.SQL("{a}.value AS {col}").format(a=alias, col=sql.Identifier(name)))
        joins.append(sql.SQL(
            "LEFT JOIN LATERAL (SELECT value FROM indicator_values v WHERE v.symbol = m.symbol "
            "AND v.timeframe = {tf} AND v.name = {n} ORDER BY ts DESC LIMIT 1) {a} ON true"
        ).format(tf=sql.Literal(screen.timeframe.value), n=sql.Literal(name), a=alias))
    pattern_filter: sql.Composable = sql.SQL("")
    if screen.patterns:
        pattern_filter += sql.SQL(" AND d.pattern = ANY({})").format(
            sql.Literal(list(screen.patterns)))
    if screen.pattern_direction:
        pattern_filter += sql.SQL(" AND d.direction = {}").format(
            sql.Literal(screen.pattern_direction))
    selects.append(sql.SQL(
        "(SELECT coalesce(array_agg(DISTINCT d.pattern), '{{}}') FROM pattern_detections d "
        "WHERE d.symbol = m.symbol AND d.timeframe = {tf} "
        "AND d.ts > last.ts - make_interval(days => {days}){pf}) AS patterns"
    ).format(tf=sql.Literal(screen.timeframe.value), days=sql.Literal(screen.pattern_days),
             pf=pattern_filter))
    where: list[sql.Composable] = [sql.SQL("last.ts IS NOT NULL")]
    for cond in screen.conditions:
        alias = sql.Identifier(f"i{indicators.index(cond.indicator)}")
        where.append(sql.SQL("{a}.value {op} {v}").format(
            a=alias, op=sql.SQL(OPS[cond.op]), v=sql.Literal(cond.value)))
    query: sql.Composed = sql.SQL(
        "SELECT * FROM (SELECT {sel} FROM ({members}) m {joins} WHERE {where}) s").format(
        sel=sql.SQL(", ").join(selects), members=members, joins=sql.SQL(" ").join(joins),
        where=sql.SQL(" AND ").join(where))
    if screen.patterns or screen.pattern_direction:
        query += sql.SQL(" WHERE cardinality(s.patterns) > 0")
    with pool.connection() as db:
        rows = [dict(r) for r in db.execute(query).fetchall()]
    rows = _sorted(rows, screen)
    return {"rows": rows[: screen.limit], "matched": len(rows), "indicators": indicators,
            "as_of": max((r["ts"] for r in rows if r["ts"]), default=None)}


def _sorted(rows: list[dict[str, Any]], screen: ScreenDefinition) -> list[dict[str, Any]]:
    key = screen.sort if rows and screen.sort in rows[0] else "symbol"

    def order(row: dict[str, Any]) -> tuple[int, Any]:
        value = row.get(key)
        if isinstance(value, list):
            value = len(value)
        return (value is None, value if value is not None else 0)

    present = [r for r in rows if r.get(key) is not None]
    missing = [r for r in rows if r.get(key) is None]
    present.sort(key=order, reverse=screen.descending)
    return present + missing
