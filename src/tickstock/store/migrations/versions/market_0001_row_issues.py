"""Rows refused by data loads: which row of which symbol, and why.

A load stores the good rows of a symbol and reports the flawed ones (empty or non-numeric
fields, high < low, duplicate or out-of-order timestamps, ...). ``import_failures`` records a
symbol that failed as a whole; this table records the rows left out of a symbol that loaded.
``source_id`` is the job (or run) id; a unit (source, symbol, timeframe) is rewritten whole
when its load reruns, so a redelivered job never duplicates its reports.

Revision ID: market_0001
Revises: 0001
"""

from alembic import op

revision = "market_0001"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE import_row_issues (
        source_id    text NOT NULL,                 -- job_id or run_id
        symbol       text NOT NULL,
        timeframe    text NOT NULL,
        n            integer NOT NULL,              -- order within the unit's report
        line         integer,                       -- 1-based line / position in the source
        ts           timestamptz,                   -- the row's bar time, when it parsed
        reason       text NOT NULL,
        recorded_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (source_id, symbol, timeframe, n)
    );
    CREATE INDEX import_row_issues_recorded ON import_row_issues (recorded_at DESC);
    """)


def downgrade() -> None:
    op.execute("DROP TABLE import_row_issues")
