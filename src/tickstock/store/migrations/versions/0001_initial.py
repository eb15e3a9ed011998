"""Initial schema: reference data, bars, analysis results, jobs, runs, schedule, users, audit.

Conventions (DESIGN.md §3): every time is ``timestamptz`` in UTC; a bar is stamped with its
start; every natural key is a primary key or unique constraint so writes are upserts; every
time-series table has its time column in its primary key (TimescaleDB-compatible).

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIMEFRAMES = "('1min','5min','15min','hour','day','week','month')"


def upgrade() -> None:
    op.execute(f"""
    -- Reference data -------------------------------------------------------------------------
    CREATE TABLE symbols (
        symbol        text PRIMARY KEY CHECK (symbol ~ '^[A-Z0-9.:/-]{{1,24}}$'),
        name          text,
        exchange      text,
        asset_type    text NOT NULL DEFAULT 'stock',
        sector        text,
        sub_industry  text,
        currency      text NOT NULL DEFAULT 'USD',
        cik           text,
        active        boolean NOT NULL DEFAULT true,
        listed_on     date,
        delisted_on   date,
        metadata      jsonb NOT NULL DEFAULT '{{}}'::jsonb,
        updated_at    timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE universes (
        name        text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.:-]{{1,64}}$'),
        kind        text NOT NULL DEFAULT 'custom'
                    CHECK (kind IN ('index','etf','sector','custom','derived')),
        description text,
        owner_id    bigint,
        created_at  timestamptz NOT NULL DEFAULT now(),
        updated_at  timestamptz NOT NULL DEFAULT now()
    );

    CREATE TABLE universe_members (
        universe  text NOT NULL REFERENCES universes(name) ON DELETE CASCADE,
        symbol    text NOT NULL REFERENCES symbols(symbol),
        added_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (universe, symbol)
    );
    CREATE INDEX universe_members_symbol ON universe_members (symbol);

    CREATE TABLE corporate_actions (
        symbol       text NOT NULL REFERENCES symbols(symbol),
        kind         text NOT NULL CHECK (kind IN ('split','dividend')),
        ex_date      date NOT NULL,
        ratio        double precision,   -- split: split_to / split_from
        amount       double precision,   -- dividend: cash amount per share
        details      jsonb NOT NULL DEFAULT '{{}}'::jsonb,
        PRIMARY KEY (symbol, kind, ex_date)
    );

    -- Market data ------------------------------------------------------------------------------
    -- One table for every timeframe. The primary key (symbol, timeframe, ts) answers
    -- "last N bars of a symbol" by a backward index scan; bars_timeframe_ts answers
    -- "all symbols at one bar time".
    CREATE TABLE bars (
        symbol     text NOT NULL,
        timeframe  text NOT NULL CHECK (timeframe IN {TIMEFRAMES}),
        ts         timestamptz NOT NULL,
        open       double precision NOT NULL,
        high       double precision NOT NULL,
        low        double precision NOT NULL,
        close      double precision NOT NULL,
        volume     double precision NOT NULL CHECK (volume >= 0),
        vwap       double precision,
        trades     integer,
        source     text NOT NULL,
        ingested_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (symbol, timeframe, ts),
        CHECK (high >= low)
    );
    CREATE INDEX bars_timeframe_ts ON bars (timeframe, ts);

    -- Analysis results (time series, never "latest only") --------------------------------------
    CREATE TABLE indicator_values (
        symbol     text NOT NULL,
        timeframe  text NOT NULL CHECK (timeframe IN {TIMEFRAMES}),
        ts         timestamptz NOT NULL,
        name       text NOT NULL,          -- canonical output name, e.g. rsi_14, macd_12_26_9.signal
        value      double precision NOT NULL,
        PRIMARY KEY (symbol, timeframe, name, ts)
    );
    CREATE INDEX indicator_values_name_ts ON indicator_values (timeframe, name, ts);

    CREATE TABLE pattern_detections (
        symbol       text NOT NULL,
        timeframe    text NOT NULL CHECK (timeframe IN {TIMEFRAMES}),
        ts           timestamptz NOT NULL,
        pattern      text NOT NULL,        -- canonical pattern name, e.g. cdl_engulfing, golden_cross
        direction    text NOT NULL CHECK (direction IN ('bullish','bearish','neutral')),
        strength     double precision,
        confidence   double precision NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
        levels       jsonb NOT NULL DEFAULT '{{}}'::jsonb,
        evidence     jsonb NOT NULL DEFAULT '{{}}'::jsonb,
        daily_agrees boolean,              -- intraday only: does the daily trend agree ("combo")
        source       text NOT NULL DEFAULT 'batch' CHECK (source IN ('batch','live')),
        detected_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (symbol, timeframe, pattern, ts)
    );
    CREATE INDEX pattern_detections_pattern_ts ON pattern_detections (pattern, timeframe, ts);
    CREATE INDEX pattern_detections_ts ON pattern_detections (ts DESC);

    CREATE TABLE pattern_outcomes (
        pattern       text NOT NULL,
        timeframe     text NOT NULL CHECK (timeframe IN {TIMEFRAMES}),
        universe      text NOT NULL,
        horizon_bars  integer NOT NULL CHECK (horizon_bars > 0),
        period_start  timestamptz NOT NULL,
        period_end    timestamptz NOT NULL,
        occurrences   integer NOT NULL,
        mean_return   double precision,
        median_return double precision,
        p10_return    double precision,
        p90_return    double precision,
        hit_rate      double precision,
        computed_at   timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (pattern, timeframe, universe, horizon_bars)
    );

    -- Jobs (source of truth; Redis holds only a read model) ------------------------------------
    CREATE TABLE jobs (
        job_id        text PRIMARY KEY,
        job_type      text NOT NULL,
        status        text NOT NULL CHECK (status IN
                      ('submitted','running','completed','failed','cancelled')),
        params        jsonb NOT NULL DEFAULT '{{}}'::jsonb,
        requested_by  text,
        correlation_id text,               -- processing run this job belongs to, if any
        submitted_at  timestamptz NOT NULL DEFAULT now(),
        started_at    timestamptz,
        finished_at   timestamptz,
        total         integer NOT NULL DEFAULT 0,
        processed     integer NOT NULL DEFAULT 0,
        failed        integer NOT NULL DEFAULT 0,
        cancel_requested boolean NOT NULL DEFAULT false,
        worker        text,
        attempts      integer NOT NULL DEFAULT 0,
        error         text,
        result        jsonb NOT NULL DEFAULT '{{}}'::jsonb
    );
    CREATE INDEX jobs_status_submitted ON jobs (status, submitted_at DESC);
    CREATE INDEX jobs_correlation ON jobs (correlation_id);

    CREATE TABLE job_events (
        job_id   text NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
        seq      bigint GENERATED ALWAYS AS IDENTITY,
        ts       timestamptz NOT NULL DEFAULT now(),
        type     text NOT NULL,
        data     jsonb NOT NULL DEFAULT '{{}}'::jsonb,
        PRIMARY KEY (job_id, seq)
    );

    CREATE TABLE job_symbol_results (
        job_id     text NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
        symbol     text NOT NULL,
        timeframe  text NOT NULL DEFAULT '',
        status     text NOT NULL CHECK (status IN ('ok','failed','skipped')),
        bars       integer NOT NULL DEFAULT 0,
        error      text,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (job_id, symbol, timeframe)
    );
    CREATE INDEX job_symbol_results_failed ON job_symbol_results (status) WHERE status = 'failed';

    -- Daily processing -------------------------------------------------------------------------
    -- Every column of the seeds' processing_runs, typed in UTC, plus what resuming needs.
    CREATE TABLE processing_runs (
        run_id               text PRIMARY KEY,
        trigger_type         text NOT NULL,          -- scheduled, manual, catch_up, api
        status               text NOT NULL CHECK (status IN
                             ('pending','running','completed','failed','cancelled')),
        phase                text,
        started_at           timestamptz,
        completed_at         timestamptz,
        duration_seconds     double precision,
        symbols_total        integer NOT NULL DEFAULT 0,
        symbols_processed    integer NOT NULL DEFAULT 0,
        symbols_failed       integer NOT NULL DEFAULT 0,
        indicators_total     integer NOT NULL DEFAULT 0,
        indicators_processed integer NOT NULL DEFAULT 0,
        indicators_failed    integer NOT NULL DEFAULT 0,
        patterns_detected    integer NOT NULL DEFAULT 0,
        error_message        text,
        metadata             jsonb NOT NULL DEFAULT '{{}}'::jsonb,
        requested_by         text,
        session_date         date,                   -- the market session the run brings data to
        phases               text[] NOT NULL DEFAULT ARRAY['data_import','indicators','patterns','outcomes'],
        universes            text[] NOT NULL DEFAULT '{{}}',
        timeframes           text[] NOT NULL DEFAULT ARRAY['day'],
        cancel_requested     boolean NOT NULL DEFAULT false,
        created_at           timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX processing_runs_created ON processing_runs (created_at DESC);
    -- One active run at a time, enforced by the database, not by hope.
    CREATE UNIQUE INDEX processing_runs_one_active ON processing_runs ((true))
        WHERE status IN ('pending','running');

    CREATE TABLE processing_run_phases (
        run_id        text NOT NULL REFERENCES processing_runs(run_id) ON DELETE CASCADE,
        phase         text NOT NULL,
        status        text NOT NULL CHECK (status IN
                      ('pending','running','completed','failed','cancelled','skipped')),
        started_at    timestamptz,
        completed_at  timestamptz,
        total         integer NOT NULL DEFAULT 0,
        processed     integer NOT NULL DEFAULT 0,
        failed        integer NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, phase)
    );

    -- A phase is split into symbol batches; a batch is done once, whoever does it.
    CREATE TABLE processing_batches (
        run_id        text NOT NULL REFERENCES processing_runs(run_id) ON DELETE CASCADE,
        phase         text NOT NULL,
        batch_no      integer NOT NULL,
        symbols       text[] NOT NULL,
        status        text NOT NULL CHECK (status IN ('pending','running','completed','failed')),
        worker        text,
        attempts      integer NOT NULL DEFAULT 0,
        processed     integer NOT NULL DEFAULT 0,
        failed        integer NOT NULL DEFAULT 0,
        completed_at  timestamptz,
        PRIMARY KEY (run_id, phase, batch_no)
    );

    -- Per-symbol failures of imports (jobs and runs), the input of "retry failed imports".
    CREATE TABLE import_failures (
        source_id    text NOT NULL,                 -- job_id or run_id
        symbol       text NOT NULL,
        timeframe    text NOT NULL,
        reason       text NOT NULL,
        failed_at    timestamptz NOT NULL DEFAULT now(),
        retried_by   text,                          -- job/run that retried it
        resolved_at  timestamptz,
        PRIMARY KEY (source_id, symbol, timeframe)
    );
    CREATE INDEX import_failures_open ON import_failures (failed_at DESC) WHERE resolved_at IS NULL;

    CREATE TABLE processing_schedule (
        name          text PRIMARY KEY DEFAULT 'daily',
        enabled       boolean NOT NULL DEFAULT true,
        run_at        time NOT NULL DEFAULT '16:10',  -- New York wall-clock time
        minutes_after_close integer,                   -- if set, wins over run_at (early closes)
        timezone      text NOT NULL DEFAULT 'America/New_York',
        universes     text[] NOT NULL DEFAULT '{{}}',
        timeframes    text[] NOT NULL DEFAULT ARRAY['day'],
        phases        text[] NOT NULL DEFAULT ARRAY['data_import','indicators','patterns','outcomes'],
        last_session_run date,                         -- last session a scheduled run was submitted for
        updated_at    timestamptz NOT NULL DEFAULT now(),
        updated_by    text
    );

    CREATE TABLE leases (
        name        text PRIMARY KEY,
        holder      text NOT NULL,
        expires_at  timestamptz NOT NULL
    );

    -- Users, tokens, audit ---------------------------------------------------------------------
    CREATE TABLE users (
        user_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        username       text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.@-]{{3,64}}$'),
        password_hash  text NOT NULL,
        role           text NOT NULL CHECK (role IN ('user','admin')),
        disabled       boolean NOT NULL DEFAULT false,
        failed_logins  integer NOT NULL DEFAULT 0,
        locked_until   timestamptz,
        created_at     timestamptz NOT NULL DEFAULT now(),
        last_login_at  timestamptz
    );

    CREATE TABLE login_attempts (
        client      text NOT NULL,                 -- remote address
        username    text NOT NULL,
        ts          timestamptz NOT NULL DEFAULT now(),
        succeeded   boolean NOT NULL
    );
    CREATE INDEX login_attempts_client_ts ON login_attempts (client, ts DESC);

    CREATE TABLE api_tokens (
        token_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        user_id      bigint NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        name         text NOT NULL,
        token_hash   text NOT NULL UNIQUE,          -- sha256 of the token; the token is shown once
        created_at   timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz,
        expires_at   timestamptz,
        revoked_at   timestamptz,
        UNIQUE (user_id, name)
    );

    CREATE TABLE saved_screens (
        user_id     bigint NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
        name        text NOT NULL,
        definition  jsonb NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now(),
        updated_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (user_id, name)
    );

    CREATE TABLE audit_log (
        audit_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        ts         timestamptz NOT NULL DEFAULT now(),
        actor      text NOT NULL,
        action     text NOT NULL,
        target     text,
        details    jsonb NOT NULL DEFAULT '{{}}'::jsonb,
        client     text
    );
    CREATE INDEX audit_log_ts ON audit_log (ts DESC);
    """)


def downgrade() -> None:
    op.execute("""
    DROP TABLE IF EXISTS audit_log, saved_screens, api_tokens, login_attempts, users, leases,
        processing_schedule, import_failures, processing_batches, processing_run_phases,
        processing_runs, job_symbol_results, job_events, jobs, pattern_outcomes,
        pattern_detections, indicator_values, bars, corporate_actions, universe_members,
        universes, symbols CASCADE;
    """)
