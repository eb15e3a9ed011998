"""Symbols and universes: reference data upserts, named symbol sets and their members.

A universe is replaced as a whole (``save_universe``): members not in the new list are removed,
new ones added, the rest left alone, in one transaction; saving the same list again changes
nothing. Members must exist in ``symbols`` (foreign key), so reference data is upserted first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row, tuple_row

from tickstock.core.errors import NotFoundError

UniverseKind = Literal["index", "etf", "sector", "custom", "derived"]
KINDS: tuple[UniverseKind, ...] = ("index", "etf", "sector", "custom", "derived")


@dataclass(frozen=True, slots=True)
class SymbolRow:
    """Reference data of one symbol; ``None`` fields keep what is stored."""

    symbol: str
    name: str | None = None
    exchange: str | None = None
    asset_type: str = "stock"
    sector: str | None = None
    sub_industry: str | None = None
    cik: str | None = None
    listed_on: date | None = None


@dataclass(frozen=True, slots=True)
class UniverseRecord:
    name: str
    kind: UniverseKind
    description: str | None
    members: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SaveResult:
    added: int
    removed: int
    total: int

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


_UPSERT_SYMBOLS = """
INSERT INTO symbols (symbol, name, exchange, asset_type, sector, sub_industry, cik, listed_on)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                     %s::text[], %s::date[])
ON CONFLICT (symbol) DO UPDATE SET
    name = coalesce(EXCLUDED.name, symbols.name),
    exchange = coalesce(EXCLUDED.exchange, symbols.exchange),
    asset_type = EXCLUDED.asset_type,
    sector = coalesce(EXCLUDED.sector, symbols.sector),
    sub_industry = coalesce(EXCLUDED.sub_industry, symbols.sub_industry),
    cik = coalesce(EXCLUDED.cik, symbols.cik),
    listed_on = coalesce(EXCLUDED.listed_on, symbols.listed_on),
    updated_at = now()
WHERE (symbols.name, symbols.exchange, symbols.asset_type, symbols.sector, symbols.sub_industry,
       symbols.cik, symbols.listed_on)
      IS DISTINCT FROM
      (coalesce(EXCLUDED.name, symbols.name), coalesce(EXCLUDED.exchange, symbols.exchange),
       EXCLUDED.asset_type, coalesce(EXCLUDED.sector, symbols.sector),
       coalesce(EXCLUDED.sub_industry, symbols.sub_industry), coalesce(EXCLUDED.cik, symbols.cik),
       coalesce(EXCLUDED.listed_on, symbols.listed_on))
"""


def upsert_symbols(conn: psycopg.Connection[Any], rows: Sequence[SymbolRow]) -> int:
    """Insert or update reference data in one statement; returns rows inserted or changed."""
    if not rows:
        return 0
    columns = [[getattr(r, f) for r in rows] for f in
               ("symbol", "name", "exchange", "asset_type", "sector", "sub_industry", "cik",
                "listed_on")]
    with conn.cursor() as cur:
        cur.execute(_UPSERT_SYMBOLS, columns)
        return max(cur.rowcount, 0)


def ensure_symbols(conn: psycopg.Connection[Any], symbols: Iterable[str]) -> int:
    """Make sure each symbol has a ``symbols`` row (bare, if unknown); returns rows added."""
    with conn.cursor() as cur:
        cur.execute("INSERT INTO symbols (symbol) SELECT unnest(%s::text[]) "
                    "ON CONFLICT (symbol) DO NOTHING", (sorted(set(symbols)),))
        return max(cur.rowcount, 0)


def save_universe(conn: psycopg.Connection[Any], name: str, *, kind: UniverseKind,
                  description: str | None, symbols: Iterable[str]) -> SaveResult:
    """Create or replace universe ``name`` with exactly ``symbols`` (which must exist)."""
    members = sorted(set(symbols))
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "INSERT INTO universes (name, kind, description) VALUES (%s, %s, %s) "
            "ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, "
            "description = EXCLUDED.description, updated_at = now() "
            "WHERE (universes.kind, universes.description) IS DISTINCT FROM "
            "(EXCLUDED.kind, EXCLUDED.description)", (name, kind, description))
        cur.execute("DELETE FROM universe_members WHERE universe = %s AND NOT symbol = ANY(%s)",
                    (name, members))
        removed = max(cur.rowcount, 0)
        try:
            cur.execute("INSERT INTO universe_members (universe, symbol) "
                        "SELECT %s, unnest(%s::text[]) ON CONFLICT DO NOTHING", (name, members))
        except psycopg.errors.ForeignKeyViolation as exc:
            raise NotFoundError(f"universe {name}: {exc.diag.message_detail or exc}") from None
        added = max(cur.rowcount, 0)
        if added or removed:
            cur.execute("UPDATE universes SET updated_at = now() WHERE name = %s", (name,))
    return SaveResult(added, removed, len(members))


def list_universes(conn: psycopg.Connection[Any]) -> list[UniverseRecord]:
    """Every universe with its member count, by name."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT u.name, u.kind, u.description, u.updated_at, count(m.symbol) AS members "
            "FROM universes u LEFT JOIN universe_members m ON m.universe = u.name "
            "GROUP BY u.name ORDER BY u.name").fetchall()
    return [UniverseRecord(r["name"], r["kind"], r["description"], int(r["members"]),
                           r["updated_at"]) for r in rows]


def get_universe(conn: psycopg.Connection[Any], name: str) -> UniverseRecord | None:
    return next((u for u in list_universes(conn) if u.name == name), None)


def members(conn: psycopg.Connection[Any], name: str) -> list[str]:
    """Members of ``name``, sorted; NotFoundError naming the known universes if absent."""
    with conn.cursor(row_factory=tuple_row) as cur:
        if cur.execute("SELECT 1 FROM universes WHERE name = %s", (name,)).fetchone() is None:
            known = [r[0] for r in cur.execute("SELECT name FROM universes ORDER BY name")]
            raise NotFoundError(f"no universe named {name!r} (known: "
                                f"{', '.join(known[:30]) or 'none yet'})")
        rows = cur.execute("SELECT symbol FROM universe_members WHERE universe = %s "
                           "ORDER BY symbol", (name,)).fetchall()
    return [r[0] for r in rows]


def member_details(conn: psycopg.Connection[Any], name: str) -> list[dict[str, Any]]:
    """Members of ``name`` with their reference data, by symbol."""
    members(conn, name)  # NotFoundError when absent
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT s.symbol, s.name, s.sector, s.sub_industry, s.asset_type, s.active "
            "FROM universe_members m JOIN symbols s USING (symbol) WHERE m.universe = %s "
            "ORDER BY s.symbol", (name,)).fetchall()


def delete_universe(conn: psycopg.Connection[Any], name: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("DELETE FROM universes WHERE name = %s", (name,))
        return cur.rowcount > 0


def symbol_rows(conn: psycopg.Connection[Any], symbols: Sequence[str]) -> dict[str, SymbolRow]:
    """Stored reference data of ``symbols`` (absent ones are missing from the result)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT symbol, name, exchange, asset_type, sector, sub_industry, cik, listed_on "
            "FROM symbols WHERE symbol = ANY(%s)", (list(symbols),)).fetchall()
    return {r["symbol"]: SymbolRow(**r) for r in rows}
