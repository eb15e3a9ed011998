"""Leader leases: a named lease held by one instance until it expires (``leases`` table).

A holder renews its lease well before ``expires_at``; anybody may take a lease whose holder
stopped renewing. Times come from the caller's clock so tests can freeze them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from tickstock.core.timeutil import utc


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    expires_at: datetime


class LeaseRepository:
    """Acquire, renew, read and release leases."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def acquire(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Take or renew ``name`` for ``holder`` until ``now + ttl``.

        True when ``holder`` holds the lease afterwards: it was free, expired, or already ours.
        One statement, so two contenders can never both win.
        """
        now = utc(now)
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                """
                INSERT INTO leases (name, holder, expires_at) VALUES (%(name)s, %(holder)s, %(exp)s)
                ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder,
                                                 expires_at = EXCLUDED.expires_at
                WHERE leases.holder = EXCLUDED.holder OR leases.expires_at <= %(now)s
                RETURNING holder
                """,
                {"name": name, "holder": holder, "exp": now + ttl, "now": now},
            ).fetchone()
        return row is not None

    def release(self, name: str, holder: str) -> None:
        """Give the lease up now (clean shutdown) so another instance takes over at once."""
        with self._pool.connection() as conn:
            conn.execute("DELETE FROM leases WHERE name = %s AND holder = %s", (name, holder))

    def get(self, name: str) -> Lease | None:
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                "SELECT name, holder, expires_at FROM leases WHERE name = %s", (name,)
            ).fetchone()
        if row is None:
            return None
        return Lease(name=row["name"], holder=row["holder"], expires_at=row["expires_at"])
