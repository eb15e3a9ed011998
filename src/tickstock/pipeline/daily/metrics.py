"""Prometheus metrics of the daily run (the lead wires the endpoints). Labels are phases,
statuses and trigger types only, so cardinality stays bounded."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_DURATIONS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)

RUNS_STARTED = Counter(
    "tickstock_daily_runs_started_total", "Daily processing runs started.", ["trigger_type"])
RUNS_FINISHED = Counter(
    "tickstock_daily_runs_finished_total", "Daily processing runs finished, by final status.",
    ["status"])
RUN_SECONDS = Histogram(
    "tickstock_daily_run_duration_seconds", "Wall time of a daily run, start to finish.",
    buckets=_DURATIONS)
PHASE_SECONDS = Histogram(
    "tickstock_daily_phase_duration_seconds", "Wall time of one phase of a daily run.",
    ["phase"], buckets=_DURATIONS)
BATCH_SECONDS = Histogram(
    "tickstock_daily_batch_duration_seconds", "Time a worker spent on one symbol batch.",
    ["phase"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
SYMBOLS = Counter(
    "tickstock_daily_symbols_total", "Symbols processed or failed by daily-run batches.",
    ["phase", "result"])
RUN_PROGRESS = Gauge(
    "tickstock_daily_run_progress_percent", "Progress of the current daily run (0-100).")
SCHEDULER_LEADER = Gauge(
    "tickstock_scheduler_leader", "1 while this scheduler instance holds the leader lease.")
SCHEDULER_NEXT_RUN = Gauge(
    "tickstock_scheduler_next_run_timestamp_seconds",
    "When the next scheduled run is due (Unix time; 0 when disabled).")
