"""The seed-001 processing API end to end: a run triggered over REST with an API token is
executed by real pipeline workers, and status, run, history and failures read it back."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tickstock.store import users as user_store
from tickstock.web.config import WebDeps

from .conftest import ADMIN, now
from .pipeline_worker import daily_workers
from .seed import real_symbols, seed_universe

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _token(deps: WebDeps) -> dict[str, str]:
    with deps.pool.connection() as db:
        admin = user_store.require_user(db, ADMIN[0])
        _, secret = user_store.create_token(db, admin.user_id, "ops", now(), timedelta(hours=1))
    return {"Authorization": f"Bearer {secret}"}


def _until_done(client: httpx.Client, run_id: str) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        res = client.get(f"/api/processing/daily/runs/{run_id}")
        if res.status_code == 200 and res.json()["status"] not in ("pending", "running"):
            return res.json()  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish")


def test_triggered_run_is_followed_through_the_api(anon: httpx.Client, web_deps: WebDeps,
                                                   shared_data: Path) -> None:
    symbols = [*real_symbols(shared_data, 4), "ZZZZ"]  # ZZZZ has no data: a per-symbol failure
    seed_universe(web_deps.pool, "api5", symbols)
    anon.headers.update(_token(web_deps))
    assert anon.get("/api/processing/daily/status").json()["run"] is None
    with daily_workers(web_deps.pool, web_deps.redis, shared_data, batch_size=2):
        res = anon.post("/api/processing/daily/trigger", json={"universes": ["api5"]})
        assert res.status_code == 202
        accepted = res.json()
        assert accepted["command_type"] == "command.trigger_daily_processing"
        run = _until_done(anon, accepted["run_id"])
    assert run["status"] == "completed", run
    assert (run["symbols_total"], run["symbols_processed"], run["symbols_failed"]) == (5, 4, 1)
    assert [p["phase"] for p in run["phase_details"]] == [
        "data_import", "indicators", "patterns", "outcomes"]
    assert all(p["percent"] == 100.0 for p in run["phase_details"])

    status = anon.get("/api/processing/daily/status").json()
    assert status["run"]["run_id"] == accepted["run_id"] and status["open_failures"] == 1
    assert status["market"]["state"] in ("open", "closed", "early_close")
    history = anon.get("/api/processing/daily/history?limit=5").json()["runs"]
    assert [r["run_id"] for r in history] == [accepted["run_id"]]
    failures = anon.get("/api/processing/import/failures").json()["failures"]
    assert [(f["symbol"], f["source_id"]) for f in failures] == [("ZZZZ", accepted["run_id"])]
    # Retry is a command the pipeline answers; the web only queues it.
    retry = anon.post("/api/processing/import/retry", json={"symbols": ["ZZZZ"]})
    assert retry.status_code == 202 and retry.json()["command_type"] == (
        "command.retry_failed_imports")
    # Cancelling when nothing runs is a conflict, not a queued no-op.
    assert anon.post("/api/processing/daily/cancel", json={}).status_code == 409


def test_active_run_is_cancelled_through_the_api(anon: httpx.Client, web_deps: WebDeps,
                                                 shared_data: Path) -> None:
    seed_universe(web_deps.pool, "api40", real_symbols(shared_data, 40))
    anon.headers.update(_token(web_deps))
    with daily_workers(web_deps.pool, web_deps.redis, shared_data, batch_size=1):
        run_id = anon.post("/api/processing/daily/trigger",
                           json={"universes": ["api40"]}).json()["run_id"]
        deadline = time.monotonic() + 60
        while anon.get(f"/api/processing/daily/runs/{run_id}").status_code == 404:
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.1)
        res = anon.post("/api/processing/daily/cancel", json={})  # the active run
        assert res.status_code == 202 and res.json()["run_id"] == run_id
        run = _until_done(anon, run_id)
    assert run["status"] == "cancelled", run
    assert run["symbols_processed"] < 40
    history = anon.get("/api/processing/daily/history").json()["runs"]
    assert [(r["run_id"], r["status"]) for r in history] == [(run_id, "cancelled")]
