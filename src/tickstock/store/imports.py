"""Reports of data loads: rows refused (``import_row_issues``) and symbol failures resolved by
a later load (``import_failures``, whose rows the job store writes)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row

#: Rows reported per unit; a source broken throughout reports this many and a count of the rest.
MAX_ISSUES_PER_UNIT = 1000


class Issue(Protocol):
    """A refused row (``market.bars.RowIssue``)."""

    @property
    def reason(self) -> str: ...
    @property
    def row(self) -> int | None: ...
    @property
    def ts(self) -> datetime | None: ...


def replace_row_issues(conn: psycopg.Connection[Any], source_id: str, symbol: str,
                       timeframe: str, issues: Sequence[Issue]) -> int:
    """Make the report of one unit exactly ``issues`` (a rerun rewrites, never duplicates);
    returns the rows stored."""
    rows: list[tuple[Any, ...]] = [
        (source_id, symbol, timeframe, n, i.row, i.ts, i.reason[:2000])
        for n, i in enumerate(issues[:MAX_ISSUES_PER_UNIT])]
    if len(issues) > MAX_ISSUES_PER_UNIT:
        rows.append((source_id, symbol, timeframe, MAX_ISSUES_PER_UNIT, None, None,
                     f"... and {len(issues) - MAX_ISSUES_PER_UNIT} more rows refused"))
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("DELETE FROM import_row_issues WHERE source_id = %s AND symbol = %s "
                    "AND timeframe = %s", (source_id, symbol, timeframe))
        if rows:
            cur.executemany(
                "INSERT INTO import_row_issues (source_id, symbol, timeframe, n, line, ts, reason)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)
    return len(rows)


def row_issues(conn: psycopg.Connection[Any], source_id: str) -> list[dict[str, Any]]:
    """The rows refused by ``source_id``, by symbol, timeframe and order."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT symbol, timeframe, line, ts, reason FROM import_row_issues "
            "WHERE source_id = %s ORDER BY symbol, timeframe, n", (source_id,)).fetchall()


def resolve_failures(conn: psycopg.Connection[Any], symbol: str, timeframe: str, *,
                     resolved_by: str, now: datetime) -> int:
    """Close the open failures of (symbol, timeframe) recorded by other jobs or runs: it has
    just loaded, so there is nothing left to retry."""
    with conn.cursor() as cur:
        cur.execute("UPDATE import_failures SET resolved_at = %s, retried_by = %s "
                    "WHERE symbol = %s AND timeframe = %s AND resolved_at IS NULL "
                    "AND source_id <> %s", (now, resolved_by, symbol, timeframe, resolved_by))
        return max(cur.rowcount, 0)


def open_failures(conn: psycopg.Connection[Any], source_id: str) -> list[dict[str, Any]]:
    """Open failures recorded by ``source_id``: the input of its "retry failed"."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT symbol, timeframe, reason, failed_at FROM import_failures "
            "WHERE source_id = %s AND resolved_at IS NULL ORDER BY symbol, timeframe",
            (source_id,)).fetchall()
