"""The two fault cases of the daily run with real ``tickstock worker`` processes (synthetic
market), killed with SIGKILL mid-phase:

- one worker of two killed while it holds a batch → the batch is taken over by the other
  worker once the bus gives its message back, and the run completes;
- every worker killed mid-phase (the whole pipeline down) and a fresh one started → the run
  resumes: batches committed before the crash are not redone, the others are, the run
  completes with every symbol counted once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
from proc_support import RoleProcess, heartbeat_of, role_env, start_role, wait_for

from tickstock.bus.submit import send_command
from tickstock.contracts.commands import TriggerDailyProcessing
from tickstock.contracts.common import Phase

pytestmark = [pytest.mark.integration, pytest.mark.slow]
#: 20 symbols make 2 batches of 10 per phase (``plan.MIN_BATCH``), each long enough (10 symbols
#: x 5 years of indicator rows) to be caught while it runs.
SYMBOLS = [f"SYN{i:04d}" for i in range(1, 21)]
PHASES = (Phase.DATA_IMPORT, Phase.INDICATORS)


@dataclass
class Fleet:
    dsn: str
    client: redis.Redis
    env: dict[str, str]
    log_dir: Path
    workers: list[RoleProcess]

    def start_worker(self) -> RoleProcess:
        worker = start_role(f"worker-{len(self.workers) + 1}", "worker", env=self.env,
                            log_dir=self.log_dir)
        self.workers.append(worker)
        return worker

    def instance(self, worker: RoleProcess) -> str:
        wait_for(lambda: heartbeat_of(self.client, worker) is not None, 60,
                 f"{worker.name}'s heartbeat", worker)
        beat = heartbeat_of(self.client, worker)
        assert beat is not None
        return beat.instance

    def query(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        with psycopg.connect(self.dsn) as conn:
            return conn.execute(sql, params).fetchall()

    def trigger(self, run_id: str) -> None:
        send_command(self.client, TriggerDailyProcessing(
            run_id=run_id, universes=("syn20",), phases=PHASES, skip_market_check=True),
            source="test")

    def run_status(self, run_id: str) -> str | None:
        rows = self.query("SELECT status FROM processing_runs WHERE run_id = %s", run_id)
        return str(rows[0][0]) if rows else None

    def batches(self, run_id: str, phase: str) -> dict[int, tuple[str, str | None, int, object]]:
        rows = self.query("SELECT batch_no, status, worker, attempts, completed_at FROM "
                          "processing_batches WHERE run_id = %s AND phase = %s", run_id, phase)
        return {int(r[0]): (str(r[1]), r[2], int(r[3]), r[4]) for r in rows}  # type: ignore[misc, call-overload]

    def running_batch_of(self, run_id: str, instance: str) -> int | None:
        rows = self.query("SELECT batch_no FROM processing_batches WHERE run_id = %s AND "
                          "phase = 'indicators' AND status = 'running' AND worker = %s",
                          run_id, instance)
        return int(rows[0][0]) if rows else None  # type: ignore[call-overload]

    def wait_finished(self, run_id: str, timeout_s: float = 240) -> None:
        wait_for(lambda: self.run_status(run_id) in ("completed", "failed", "cancelled"),
                 timeout_s, f"run {run_id} to finish", *[w for w in self.workers
                                                         if w.proc.poll() is None])


@pytest.fixture
def fleet(db_dsn: str, redis_url: str, tmp_path: Path) -> Iterator[Fleet]:
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO symbols (symbol) SELECT unnest(%s::text[])", (SYMBOLS,))
        conn.execute("INSERT INTO universes (name) VALUES ('syn20')")
        conn.execute("INSERT INTO universe_members (universe, symbol) SELECT 'syn20', symbol "
                     "FROM symbols")
    env = role_env(db_dsn, redis_url, tmp_path, TICKSTOCK_PROVIDER="synthetic",
                   TICKSTOCK_BUS_CLAIM_IDLE_S="2")
    client = redis.Redis.from_url(redis_url)
    fleet = Fleet(db_dsn, client, env, tmp_path, [])
    yield fleet
    for worker in fleet.workers:
        if worker.proc.poll() is None:
            worker.kill()
    client.close()


def _indicator_rows(fleet: Fleet) -> tuple[int, int]:
    rows = fleet.query("SELECT count(*), count(DISTINCT symbol) FROM indicator_values")
    return int(rows[0][0]), int(rows[0][1])  # type: ignore[call-overload]


def test_worker_killed_mid_phase_its_batch_is_reclaimed_and_the_run_completes(
    fleet: Fleet,
) -> None:
    victim, survivor = fleet.start_worker(), fleet.start_worker()
    victim_name = fleet.instance(victim)
    fleet.instance(survivor)
    fleet.trigger("fault-one-worker")
    held: list[int] = []

    def victim_holds_a_batch() -> bool:
        batch = fleet.running_batch_of("fault-one-worker", victim_name)
        if batch is not None:
            held.append(batch)
        return batch is not None

    wait_for(victim_holds_a_batch, 120, "the victim to hold an indicators batch", victim)
    victim.kill()
    orphan = held[0]
    assert fleet.batches("fault-one-worker", "indicators")[orphan][:2] == ("running", victim_name)

    fleet.wait_finished("fault-one-worker")
    assert fleet.run_status("fault-one-worker") == "completed"
    status, worker, attempts, _ = fleet.batches("fault-one-worker", "indicators")[orphan]
    assert status == "completed" and worker != victim_name and attempts >= 2
    rows = fleet.query("SELECT symbols_processed, symbols_failed, indicators_processed, "
                       "indicators_total FROM processing_runs")
    processed, failed, done, total = rows[0]
    assert (processed, failed) == (20, 0) and done == total
    values, symbols = _indicator_rows(fleet)
    assert symbols == 20 and values > 0
    assert survivor.terminate() == 0


def test_whole_pipeline_killed_mid_run_resumes_from_the_last_committed_batch(
    fleet: Fleet,
) -> None:
    # One worker is the whole pipeline here: it does the batches one after the other, so there
    # is a whole batch's time between the first commit and the last.
    only = fleet.start_worker()
    fleet.instance(only)
    fleet.trigger("fault-all")

    def some_indicator_batches_committed() -> bool:
        done = [b for b in fleet.batches("fault-all", "indicators").values()
                if b[0] == "completed"]
        return len(done) == 1

    wait_for(some_indicator_batches_committed, 180, "half of the indicators phase", only)
    only.kill()
    committed = {no: b for no, b in fleet.batches("fault-all", "indicators").items()
                 if b[0] == "completed"}
    imported = fleet.batches("fault-all", "data_import")
    assert len(committed) == 1 and fleet.run_status("fault-all") == "running"

    fleet.start_worker()  # the pipeline comes back
    fleet.wait_finished("fault-all")
    assert fleet.run_status("fault-all") == "completed"
    after = fleet.batches("fault-all", "indicators")
    for no, before in committed.items():
        assert after[no] == before, f"batch {no} was redone"
    assert fleet.batches("fault-all", "data_import") == imported  # the import was not redone
    assert all(b[0] == "completed" for b in after.values())
    rows = fleet.query("SELECT symbols_processed, symbols_failed, indicators_processed, "
                       "indicators_total FROM processing_runs")
    processed, failed, done, total = rows[0]
    assert (processed, failed) == (20, 0) and done == total  # every symbol counted once
    assert _indicator_rows(fleet)[1] == 20
