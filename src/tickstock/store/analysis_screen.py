"""Screens over the latest indicator values: "rsi_14 < 30 and close > sma_200" from indexes.

The first indicator a screen names drives the query through the ``indicator_latest (timeframe,
name)`` index (migrations ``analysis_0001``/``0002``: one row per symbol to compare, the value
left out of the index so the daily run updates rows in place); the other names join through its
primary key and bar columns through ``bars``' primary key, so every value of a hit belongs to
the same bar. Names are checked against a
strict pattern before they reach SQL; values are always bound parameters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from tickstock.core.errors import DataValidationError

_NAME = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)?$")
BAR_COLUMNS = ("open", "high", "low", "close", "volume")

Op = Literal["<", "<=", ">", ">=", "="]
_OPS: dict[str, Op] = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "=": "="}
_CONDITION = re.compile(r"^\s*([a-z0-9_.]+)\s*(<=|>=|<|>|=)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Condition:
    """``left op right``: ``left`` is an indicator column (``rsi_14``, ``bbands_20_2.upper``) or a
    bar column (``open``, ``high``, ``low``, ``close``, ``volume``); ``right`` the same or a number."""

    left: str
    op: Op
    right: str | float

    @staticmethod
    def parse(text: str) -> Condition:
        """``"rsi_14 < 30"``, ``"close > sma_200"``."""
        m = _CONDITION.match(text)
        if m is None:
            raise DataValidationError(f"screen condition {text!r}: expected 'name op value'")
        left, op, right = m.groups()
        try:
            value: str | float = float(right)
        except ValueError:
            value = right
        return Condition(left, _OPS[op], value)


@dataclass(frozen=True)
class ScreenHit:
    symbol: str
    ts: datetime
    values: dict[str, float]


def _operand(name: str, aliases: Mapping[str, sql.Composable]) -> sql.Composable:
    if name in BAR_COLUMNS:
        return sql.SQL("b.{}").format(sql.Identifier(name))
    return aliases[name]


def screen(
    conn: psycopg.Connection[Any],
    timeframe: str,
    conditions: Sequence[Condition | str],
    *,
    symbols: Sequence[str] | None = None,
    limit: int = 1000,
) -> list[ScreenHit]:
    """Symbols whose latest values meet every condition, all read at one bar per symbol.

    The first indicator named drives the query through ``indicator_latest (timeframe, name)``;
    the others and the bar columns join on (symbol, timeframe, ts), so every value of
    a hit belongs to the same bar."""
    conds = [c if isinstance(c, Condition) else Condition.parse(c) for c in conditions]
    names: list[str] = []
    for c in conds:
        for side in (c.left, c.right):
            if isinstance(side, str):
                if not _NAME.match(side):
                    raise DataValidationError(f"screen: {side!r} is not an indicator or bar column")
                if side not in BAR_COLUMNS and side not in names:
                    names.append(side)
    if not names:
        raise DataValidationError("screen: name at least one indicator (e.g. rsi_14 < 30)")
    aliases = {n: sql.SQL("i{}.value").format(sql.Literal(k)) for k, n in enumerate(names)}
    params: dict[str, Any] = {"tf": timeframe, "n0": names[0], "limit": limit, "symbols": symbols}
    joins: list[sql.Composable] = []
    for k, name in enumerate(names[1:], start=1):
        params[f"n{k}"] = name
        joins.append(
            sql.SQL(
                "JOIN indicator_latest i{k} ON i{k}.symbol = i0.symbol AND i{k}.timeframe = i0.timeframe "
                "AND i{k}.name = {p} AND i{k}.ts = i0.ts"
            ).format(k=sql.Literal(k), p=sql.Placeholder(f"n{k}"))
        )
    bar_cols = [n for c in conds for n in (c.left, c.right) if isinstance(n, str) and n in BAR_COLUMNS]
    if bar_cols:
        joins.append(
            sql.SQL("JOIN bars b ON b.symbol = i0.symbol AND b.timeframe = i0.timeframe AND b.ts = i0.ts")
        )
    where: list[sql.Composable] = []
    for k, c in enumerate(conds):
        left = _operand(c.left, aliases)
        if isinstance(c.right, str):
            right: sql.Composable = _operand(c.right, aliases)
        else:
            params[f"v{k}"] = c.right
            right = sql.Placeholder(f"v{k}")
        where.append(sql.SQL("{} {} {}").format(left, sql.SQL(c.op), right))
    selected = [sql.SQL("{} AS {}").format(a, sql.Identifier(n)) for n, a in aliases.items()]
    selected += [sql.SQL("b.{c} AS {c}").format(c=sql.Identifier(n)) for n in dict.fromkeys(bar_cols)]
    query = sql.SQL(
        "SELECT i0.symbol, i0.ts, {sel} FROM indicator_latest i0 {joins} "
        "WHERE i0.timeframe = %(tf)s AND i0.name = %(n0)s "
        "AND (%(symbols)s::text[] IS NULL OR i0.symbol = ANY(%(symbols)s)) AND {where} "
        "ORDER BY i0.symbol LIMIT %(limit)s"
    ).format(
        sel=sql.SQL(", ").join(selected),
        joins=sql.SQL(" ").join(joins),
        where=sql.SQL(" AND ").join(where),
    )
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query, params).fetchall()
    return [ScreenHit(r.pop("symbol"), r.pop("ts"), {k: float(v) for k, v in r.items()}) for r in rows]
