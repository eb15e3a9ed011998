"""Daily run batches: when a batch was sent to the bus and claimed, and why it failed.

``published_at`` lets a resumed run re-send exactly the batches whose message may never have
reached the stream (the process died between committing the batch rows and XADD);
``claimed_at`` shows which worker holds a batch since when; ``error`` keeps a batch's failure.

Revision ID: daily_0001
Revises: 0001
"""

from alembic import op

revision = "daily_0001"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    ALTER TABLE processing_batches
        ADD COLUMN published_at timestamptz,
        ADD COLUMN claimed_at   timestamptz,
        ADD COLUMN error        text;
    CREATE INDEX processing_batches_open ON processing_batches (run_id, phase)
        WHERE status <> 'completed';
    """)


def downgrade() -> None:
    op.execute("""
    DROP INDEX IF EXISTS processing_batches_open;
    ALTER TABLE processing_batches
        DROP COLUMN IF EXISTS published_at,
        DROP COLUMN IF EXISTS claimed_at,
        DROP COLUMN IF EXISTS error;
    """)
