"""Saved screener definitions, one set per user (table ``saved_screens``).

The definition is stored as JSON exactly as the web app validated it; the store does not
interpret it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tickstock.core.errors import NotFoundError

MAX_SCREENS_PER_USER = 100


@dataclass(frozen=True, slots=True)
class SavedScreen:
    user_id: int
    name: str
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime


def save(
    conn: psycopg.Connection[Any], user_id: int, name: str, definition: dict[str, Any], at: datetime
) -> SavedScreen:
    """Create or replace the screen ``name`` of ``user_id``."""
    row = conn.execute(
        "INSERT INTO saved_screens (user_id, name, definition, created_at, updated_at) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (user_id, name) DO UPDATE "
        "SET definition = EXCLUDED.definition, updated_at = EXCLUDED.updated_at RETURNING *",
        (user_id, name, Jsonb(definition), at, at),
    ).fetchone()
    assert row is not None
    return SavedScreen(**row)


def count(conn: psycopg.Connection[Any], user_id: int) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM saved_screens WHERE user_id = %s", (user_id,)
    ).fetchone()
    return int(row["n"]) if row else 0


def list_for(conn: psycopg.Connection[Any], user_id: int) -> list[SavedScreen]:
    rows = conn.execute(
        "SELECT * FROM saved_screens WHERE user_id = %s ORDER BY name", (user_id,)
    ).fetchall()
    return [SavedScreen(**r) for r in rows]


def get(conn: psycopg.Connection[Any], user_id: int, name: str) -> SavedScreen:
    row = conn.execute(
        "SELECT * FROM saved_screens WHERE user_id = %s AND name = %s", (user_id, name)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no saved screen named {name!r}")
    return SavedScreen(**row)


def delete(conn: psycopg.Connection[Any], user_id: int, name: str) -> None:
    n = conn.execute(
        "DELETE FROM saved_screens WHERE user_id = %s AND name = %s", (user_id, name)
    ).rowcount
    if n == 0:
        raise NotFoundError(f"no saved screen named {name!r}")
