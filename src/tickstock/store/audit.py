"""The audit log: who did what to what, from where (table ``audit_log``).

Every state-changing action taken through the web app or the users CLI is recorded here:
logins, triggers, cancels, job submissions, account changes. Rows are never updated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb


@dataclass(frozen=True, slots=True)
class AuditEntry:
    audit_id: int
    ts: datetime
    actor: str
    action: str
    target: str | None
    details: dict[str, Any]
    client: str | None


def record(
    conn: psycopg.Connection[Any],
    *,
    actor: str,
    action: str,
    at: datetime,
    target: str | None = None,
    details: dict[str, Any] | None = None,
    client: str | None = None,
) -> None:
    """Append one entry; ``action`` is a dotted verb such as ``user.create`` or ``run.trigger``."""
    conn.execute(
        "INSERT INTO audit_log (ts, actor, action, target, details, client) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (at, actor, action, target, Jsonb(details or {}), client),
    )


def recent(
    conn: psycopg.Connection[Any], limit: int = 50, action_prefix: str | None = None
) -> list[AuditEntry]:
    """Newest entries first, optionally only actions starting with ``action_prefix``."""
    if action_prefix:
        rows = conn.execute(
            "SELECT * FROM audit_log WHERE action LIKE %s ORDER BY ts DESC, audit_id DESC LIMIT %s",
            (action_prefix.replace("%", r"\%") + "%", limit),
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT * FROM audit_log ORDER BY ts DESC, audit_id DESC LIMIT %s", (limit,)
        ).fetchall()
    return [AuditEntry(**r) for r in rows]
