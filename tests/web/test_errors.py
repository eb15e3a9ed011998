"""Errors come back as JSON with a clear message and the right status code (pages get an HTML
error page); an unexpected failure is a JSON 500, not a dropped connection."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from .conftest import Server


def test_validation_errors_name_the_field(admin_client: tuple[httpx.Client, str]) -> None:
    client, csrf = admin_client
    res = client.get("/api/bars/AAPL?timeframe=fortnight")
    assert res.status_code == 422
    body = res.json()
    assert body["error"] == "invalid" and "timeframe" in body["message"]
    assert body["details"][0]["field"] == "query.timeframe"
    res = client.post("/api/jobs", json={"job_type": "historical_load", "symbols": ["AAPL"]},
                      headers={"X-CSRF-Token": csrf})
    assert res.status_code == 422 and "start" in res.json()["message"]
    res = client.get("/api/bars/AAPL?start=2024-01-02T00:00:00")
    assert res.status_code == 422 and "timezone" in res.json()["message"]


def test_unknown_things_are_404_json(admin_client: tuple[httpx.Client, str]) -> None:
    client, _ = admin_client
    for url in ("/api/jobs/nope", "/api/processing/daily/runs/nope", "/api/universes/nope",
                "/api/no-such-endpoint"):
        res = client.get(url)
        assert res.status_code == 404, url
        assert res.json()["error"] == "not_found" and res.json()["message"], url


def test_wrong_method_is_405_json(admin_client: tuple[httpx.Client, str]) -> None:
    client, csrf = admin_client
    res = client.delete("/api/jobs", headers={"X-CSRF-Token": csrf})
    assert res.status_code == 405 and res.json()["error"] == "method_not_allowed"


def test_nothing_to_cancel_is_409(admin_client: tuple[httpx.Client, str]) -> None:
    client, csrf = admin_client
    res = client.post("/api/processing/daily/cancel", json={}, headers={"X-CSRF-Token": csrf})
    assert res.status_code == 409 and "no run is active" in res.json()["message"]


def test_unexpected_failure_is_json_500(app: FastAPI) -> None:
    def broken() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/api/test-broken", broken)
    with Server(app) as server, httpx.Client(base_url=server.url) as client:
        res = client.get("/api/test-broken")
    assert res.status_code == 500
    assert res.json() == {"error": "error", "message": "internal error: the failure is logged",
                          "details": []}


def test_metrics_count_requests_by_route_template(admin_client: tuple[httpx.Client, str]) -> None:
    client, _ = admin_client
    client.get("/api/bars/AAPL")
    client.get("/api/bars/MSFT")
    client.get("/api/jobs/nope")
    text = client.get("/metrics").text
    assert ('tickstock_web_http_requests_total{method="GET",route="/api/bars/{symbol}",'
            'status="200"} 2.0') in text
    assert 'route="/api/jobs/{job_id}",status="404"' in text
    assert "/api/bars/AAPL" not in text  # raw paths would make unbounded label sets
