"""Latest indicator values per symbol, kept by the database, for screens and symbol pages.

``indicator_latest`` holds, per (symbol, timeframe, name), the newest row of
``indicator_values``. Statement-level triggers with transition tables keep it current for every
writer (COPY, INSERT, upsert, delete), whoever wrote the rows: one ``DISTINCT ON`` over the
statement's new rows, not a trigger call per row. The screener ("rsi_14 < 30 and close above
sma_200") starts from the ``(timeframe, name, value)`` index and joins the other names through
the primary key, so it reads a few index pages however many symbols there are.

Revision ID: analysis_0001
Revises: 0001
"""

from alembic import op

revision = "analysis_0001"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE indicator_latest (
        symbol     text NOT NULL,
        timeframe  text NOT NULL,
        name       text NOT NULL,
        ts         timestamptz NOT NULL,
        value      double precision NOT NULL,
        PRIMARY KEY (symbol, timeframe, name)
    );
    CREATE INDEX indicator_latest_screen ON indicator_latest (timeframe, name, value);

    CREATE FUNCTION indicator_latest_upsert() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
        INSERT INTO indicator_latest AS l (symbol, timeframe, name, ts, value)
        SELECT DISTINCT ON (symbol, timeframe, name) symbol, timeframe, name, ts, value
        FROM new_rows
        ORDER BY symbol, timeframe, name, ts DESC
        ON CONFLICT (symbol, timeframe, name) DO UPDATE
            SET ts = EXCLUDED.ts, value = EXCLUDED.value
            WHERE l.ts <= EXCLUDED.ts;
        RETURN NULL;
    END
    $fn$;

    -- A deleted row may have been the latest: recompute the keys the statement touched.
    CREATE FUNCTION indicator_latest_recompute() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
        CREATE TEMP TABLE IF NOT EXISTS indicator_latest_keys
            (symbol text, timeframe text, name text) ON COMMIT DROP;
        TRUNCATE indicator_latest_keys;
        INSERT INTO indicator_latest_keys SELECT DISTINCT symbol, timeframe, name FROM old_rows;
        DELETE FROM indicator_latest l USING indicator_latest_keys k
            WHERE l.symbol = k.symbol AND l.timeframe = k.timeframe AND l.name = k.name;
        INSERT INTO indicator_latest (symbol, timeframe, name, ts, value)
        SELECT k.symbol, k.timeframe, k.name, v.ts, v.value
        FROM indicator_latest_keys k
        CROSS JOIN LATERAL (
            SELECT ts, value FROM indicator_values v
            WHERE v.symbol = k.symbol AND v.timeframe = k.timeframe AND v.name = k.name
            ORDER BY ts DESC LIMIT 1) v;
        RETURN NULL;
    END
    $fn$;

    CREATE TRIGGER indicator_latest_on_insert AFTER INSERT ON indicator_values
        REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION indicator_latest_upsert();
    CREATE TRIGGER indicator_latest_on_update AFTER UPDATE ON indicator_values
        REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION indicator_latest_upsert();
    CREATE TRIGGER indicator_latest_on_delete AFTER DELETE ON indicator_values
        REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION indicator_latest_recompute();

    INSERT INTO indicator_latest (symbol, timeframe, name, ts, value)
    SELECT DISTINCT ON (symbol, timeframe, name) symbol, timeframe, name, ts, value
    FROM indicator_values ORDER BY symbol, timeframe, name, ts DESC;
    """)


def downgrade() -> None:
    op.execute("""
    DROP TRIGGER IF EXISTS indicator_latest_on_insert ON indicator_values;
    DROP TRIGGER IF EXISTS indicator_latest_on_update ON indicator_values;
    DROP TRIGGER IF EXISTS indicator_latest_on_delete ON indicator_values;
    DROP FUNCTION IF EXISTS indicator_latest_upsert();
    DROP FUNCTION IF EXISTS indicator_latest_recompute();
    DROP TABLE IF EXISTS indicator_latest;
    """)
