"""Job submission over REST (seed 003's job types on the new contract) and ``/health``."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import httpx
import redis
from fastapi import FastAPI

from tickstock.contracts import decode, names
from tickstock.contracts.jobs import FileImport, HistoricalLoad, MultiTimeframeLoad, UniverseSeed
from tickstock.web.app import create_app
from tickstock.web.config import WebDeps

from .conftest import ADMIN


def test_each_job_type_lands_on_the_jobs_stream(admin_client: tuple[httpx.Client, str],
                                                web_deps: WebDeps) -> None:
    client, csrf = admin_client
    h = {"X-CSRF-Token": csrf}
    bodies: list[dict[str, Any]] = [
        {"job_type": "historical_load", "symbols": ["AAPL", "MSFT"], "years": 1},
        {"job_type": "multi_timeframe_load", "universe": "dow30", "timeframes": ["hour", "day"],
         "start": "2017-01-03T00:00:00Z", "end": "2017-06-01T00:00:00Z"},
        {"job_type": "universe_seed", "universe": "sp500", "years": 2},
        {"job_type": "file_import", "path": "/data/bars.csv.gz", "symbol": "AAPL",
         "timeframe": "day"},
    ]
    ids = []
    for body in bodies:
        res = client.post("/api/jobs", json=body, headers=h)
        assert res.status_code == 202, res.text
        ids.append(res.json()["job_id"])
    entries: Any = web_deps.redis.xrange(names.JOBS_STREAM)
    jobs = [decode(fields[names.ENVELOPE_FIELD.encode()]) for _, fields in entries]
    assert [e.id for e in jobs] == ids
    hist, multi, seed, file = (e.data for e in jobs)
    assert isinstance(hist, HistoricalLoad) and hist.symbols == ("AAPL", "MSFT")
    assert (hist.end - hist.start).days in (365, 366) and hist.requested_by == ADMIN[0]
    assert isinstance(multi, MultiTimeframeLoad) and [str(t) for t in multi.timeframes] == [
        "hour", "day"] and multi.universe == "dow30"
    assert isinstance(seed, UniverseSeed) and seed.universe == "sp500"
    assert isinstance(file, FileImport) and file.path == "/data/bars.csv.gz"
    with web_deps.pool.connection() as db:
        audited = [r["target"] for r in db.execute(
            "SELECT target FROM audit_log WHERE action LIKE 'job.%%' ORDER BY audit_id")]
    assert audited == ids
    # What the contract refuses comes back as 422 naming the field, and nothing is queued.
    for bad in ({"job_type": "universe_seed", "years": 1},
                {"job_type": "historical_load", "symbols": ["not a symbol!"], "years": 1},
                {"job_type": "historical_load", "symbols": ["AAPL"], "years": 99}):
        res = client.post("/api/jobs", json=bad, headers=h)
        assert res.status_code == 422 and res.json()["message"], (bad, res.text)
    assert web_deps.redis.xlen(names.JOBS_STREAM) == len(bodies)


def test_health_reports_each_dependency(web_deps: WebDeps) -> None:
    async def get(app: FastAPI) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://web") as client:
            return await client.get("/health")

    ok = asyncio.run(get(create_app(web_deps)))
    assert ok.status_code == 200 and ok.json()["status"] == "ok"
    assert ok.json()["postgres"]["status"] == "up" and ok.json()["redis"]["status"] == "up"
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    broken = WebDeps(pool=web_deps.pool, redis=cast(Any, dead), clock=web_deps.clock,
                     config=web_deps.config, calendar=web_deps.calendar)
    res = asyncio.run(get(create_app(broken)))
    assert res.status_code == 503
    body = res.json()
    assert body["status"] == "degraded" and body["redis"]["status"] == "down"
    assert body["postgres"]["status"] == "up" and body["redis"]["error"]
