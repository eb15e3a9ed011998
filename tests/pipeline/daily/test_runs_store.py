"""The runs store against real PostgreSQL: one active run, batch completion counted once,
exactly one completer finishes a phase, import failures open and resolved."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from psycopg_pool import ConnectionPool

from tickstock.store.db import create_pool
from tickstock.store.runs import NewRun, RunAlreadyActive, RunRepository

NOW = datetime(2024, 11, 26, 21, 10, tzinfo=UTC)


@pytest.fixture
def runs(db_dsn: str) -> Iterator[RunRepository]:
    pool: ConnectionPool = create_pool(db_dsn, max_size=8)
    yield RunRepository(pool)
    pool.close()


def new_run(run_id: str) -> NewRun:
    return NewRun(run_id=run_id, trigger_type="manual", phases=("data_import", "indicators"),
                  universes=("sp500",), timeframes=("day",))


def test_only_one_active_run(runs: RunRepository) -> None:
    first = runs.create_run(new_run("r1"), NOW)
    assert first.status == "pending"
    with pytest.raises(RunAlreadyActive) as excinfo:
        runs.create_run(new_run("r2"), NOW)
    assert excinfo.value.active.run_id == "r1"
    assert "r1" in str(excinfo.value)
    assert runs.finish_run("r1", "completed", NOW + timedelta(minutes=1)) is not None
    assert runs.finish_run("r1", "failed", NOW) is None  # already final
    assert runs.create_run(new_run("r2"), NOW).run_id == "r2"
    page, total = runs.list_runs(limit=1)
    assert total == 2 and len(page) == 1


def test_batches_complete_once_and_one_completer_finishes_the_phase(runs: RunRepository) -> None:
    runs.create_run(new_run("r1"), NOW)
    symbols = [f"S{i}" for i in range(40)]
    batches = [symbols[i:i + 2] for i in range(0, 40, 2)]
    open_batches = runs.start_phase("r1", "data_import", batches, NOW)
    assert len(open_batches) == 20
    assert runs.get_run("r1").status == "running"
    finished: list[int] = []
    barrier = threading.Barrier(20)

    def complete(no: int) -> None:
        assert runs.claim_batch("r1", "data_import", no, f"w{no}", NOW, stale_before=NOW) is not None
        barrier.wait()
        result = runs.complete_batch("r1", "data_import", no, NOW, processed=2, failed=0,
                                     run_counters={"symbols_processed": 2})
        if result.phase_finished:
            finished.append(no)

    threads = [threading.Thread(target=complete, args=(no,)) for no in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(finished) == 1
    # A redelivered message neither counts again nor finishes the phase again.
    again = runs.complete_batch("r1", "data_import", 3, NOW, processed=2, failed=0,
                                run_counters={"symbols_processed": 2})
    assert not again.counted and not again.phase_finished
    assert runs.claim_batch("r1", "data_import", 3, "w9", NOW, stale_before=NOW) is None
    phase = runs.get_phase("r1", "data_import")
    assert phase is not None and (phase.status, phase.processed, phase.total) == ("completed", 40, 40)
    assert runs.get_run("r1").symbols_processed == 40
    # Starting the phase again (a resumed orchestrator) creates nothing new.
    assert runs.start_phase("r1", "data_import", batches, NOW) == []


def test_import_failures_open_and_resolved(runs: RunRepository) -> None:
    runs.record_import_failures("r1", [("AAA", "day", "boom"), ("BBB", "day", "bad")], NOW)
    assert {f.symbol for f in runs.open_import_failures()} == {"AAA", "BBB"}
    assert runs.resolve_import_failures([("AAA", "day")], "r2", NOW) == 1
    assert [f.symbol for f in runs.open_import_failures(source_id="r1")] == ["BBB"]


def test_queue_behind_active_run_holds_one(runs: RunRepository) -> None:
    runs.create_run(new_run("r1"), NOW)
    assert runs.enqueue("r1", {"run_id": "q1"})
    assert not runs.enqueue("r1", {"run_id": "q2"})
    assert runs.get_run("r1").metadata["queue"] == [{"run_id": "q1"}]
