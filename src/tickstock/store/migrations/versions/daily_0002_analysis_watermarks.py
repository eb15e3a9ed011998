"""Analysis watermarks: per symbol, timeframe and kind (indicators, patterns), the newest bar
the daily run has computed, so the next run computes only the bars after it.

Written in the same transaction as the batch's results; a redone batch rewrites the same rows.

Revision ID: daily_0002
Revises: daily_0001
"""

from alembic import op

revision = "daily_0002"
down_revision = "daily_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE analysis_watermarks (
        symbol     text NOT NULL,
        timeframe  text NOT NULL,
        kind       text NOT NULL CHECK (kind IN ('indicators', 'patterns')),
        last_ts    timestamptz NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (symbol, timeframe, kind)
    );
    """)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS analysis_watermarks")
