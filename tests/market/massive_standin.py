"""A local stand-in for the Massive REST API, for running the official client end to end.

Serves aggregates (paged with ``next_url`` like the real API), reference tickers, splits,
dividends and market status, built from the real sample responses in
``../shared/data/massive``. Every 200 body is checked against the response schema of the
official OpenAPI description (``openapi_rest.json``) before it is sent; a mismatch is kept in
``schema_errors`` (tests assert it stays empty). Faults can be queued: the next matching
request gets the given status (429 with ``Retry-After: 0``, 500, 401...).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jsonschema
import referencing
import uvicorn
from referencing.jsonschema import DRAFT7
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

_OPENAPI_URI = "urn:massive:openapi_rest"
_AGGS = "/v2/aggs/ticker/{stocksTicker}/range/{multiplier}/{timespan}/{from}/{to}"


def _pointer(path: str) -> str:
    return path.replace("~", "~0").replace("/", "~1")


@dataclass
class StandIn:
    """The server's state: bars it knows, faults to inject, what it was asked."""

    data_dir: Path
    api_key: str = "test-key"
    page_size: int = 100
    bars: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    faults: deque[tuple[str, int]] = field(default_factory=deque)
    requests: list[tuple[str, int]] = field(default_factory=list)
    schema_errors: list[str] = field(default_factory=list)
    base_url: str = ""

    def __post_init__(self) -> None:
        spec = json.loads((self.data_dir / "openapi_rest.json").read_text())
        resource = referencing.Resource.from_contents(spec, default_specification=DRAFT7)
        self._registry: referencing.Registry[Any] = referencing.Registry().with_resource(
            _OPENAPI_URI, resource)
        self._spec = spec

    def fail_next(self, path_prefix: str, status: int, times: int = 1) -> None:
        for _ in range(times):
            self.faults.append((path_prefix, status))

    def sample(self, name: str) -> Any:
        return json.loads((self.data_dir / name).read_text())

    def validate(self, openapi_path: str, body: Any) -> None:
        ref = (f"{_OPENAPI_URI}#/paths/{_pointer(openapi_path)}/get/responses/200/content/"
               "application~1json/schema")
        validator = jsonschema.Draft7Validator({"$ref": ref}, registry=self._registry)
        for error in validator.iter_errors(body):
            self.schema_errors.append(f"{openapi_path}: {error.message}")

    # -- handlers ------------------------------------------------------------------------------

    def _fault(self, request: Request) -> JSONResponse | None:
        auth = request.headers.get("authorization", "")
        if auth != f"Bearer {self.api_key}":
            return JSONResponse({"status": "ERROR", "request_id": "standin",
                                 "error": "Unknown API Key"}, status_code=401)
        if self.faults and request.url.path.startswith(self.faults[0][0]):
            _, status = self.faults.popleft()
            body = {"status": "ERROR", "request_id": "standin", "error": f"injected {status}"}
            headers = {"Retry-After": "0"} if status == 429 else {}
            return JSONResponse(body, status_code=status, headers=headers)
        return None

    async def dispatch(self, request: Request) -> JSONResponse:
        response = self._fault(request)
        if response is None:
            response = self._answer(request)
        self.requests.append((str(request.url.path) + "?" + request.url.query,
                              response.status_code))
        return response

    def _answer(self, request: Request) -> JSONResponse:
        path = request.url.path
        if path.startswith("/v2/aggs/ticker/"):
            return self._aggs(request)
        if path.startswith("/v2/aggs/grouped/locale/us/market/stocks/"):
            return self._grouped(path.rsplit("/", 1)[1])
        if path == "/v3/reference/tickers":
            return self._ok("/v3/reference/tickers", self._tickers(request))
        if path == "/v1/marketstatus/now":
            return self._ok("/v1/marketstatus/now", self.sample("marketstatus_now.json"))
        if path in ("/v3/reference/splits", "/v3/reference/dividends"):
            return self._ok(path, self._actions(path, request.query_params.get("ticker")))
        return JSONResponse({"status": "NOT_FOUND", "request_id": "standin"}, status_code=404)

    def _actions(self, path: str, ticker: str | None) -> Any:
        """The real splits sample (of ``ticker``), no dividends."""
        if path.endswith("dividends"):
            return {"status": "OK", "request_id": "standin", "results": []}
        body = self.sample("reference_splits.json")
        body["results"] = [r for r in body["results"] if ticker in (None, r["ticker"])]
        return body

    def _tickers(self, request: Request) -> Any:
        """The real sample as page 1; its ``next_url`` (api.massive.com) is pointed here and
        answered with an empty last page, so the client's pagination ends."""
        if "cursor" in request.query_params:
            return {"status": "OK", "request_id": "standin-last", "count": 0, "results": []}
        body = self.sample("reference_tickers.json")
        cursor = urlsplit(body["next_url"]).query
        body["next_url"] = f"{self.base_url}{request.url.path}?{cursor}"
        return body

    def _ok(self, openapi_path: str, body: Any) -> JSONResponse:
        self.validate(openapi_path, body)
        return JSONResponse(body)

    def _aggs(self, request: Request) -> JSONResponse:
        parts = request.url.path.split("/")
        ticker, multiplier, timespan, lo, hi = parts[4], parts[6], parts[7], parts[8], parts[9]
        offset = int(request.query_params.get("cursor", "0"))
        limit = min(int(request.query_params.get("limit", "5000")), self.page_size)
        rows = [b for b in self.bars.get((ticker, f"{multiplier}/{timespan}"), [])
                if _ms(lo) <= b["t"] <= _ms(hi, end=True)]
        page = rows[offset: offset + limit]
        body: dict[str, Any] = {
            "ticker": ticker, "adjusted": True, "queryCount": len(page),
            "resultsCount": len(page), "status": "OK", "request_id": f"standin-{offset}",
            "results": page,
        }
        if offset + limit < len(rows):
            query = dict(request.query_params)
            query["cursor"] = str(offset + limit)
            body["next_url"] = f"{self.base_url}{request.url.path}?{urlencode(query)}"
        return self._ok(_AGGS, body)


    def _grouped(self, day: str) -> JSONResponse:
        """Every ticker's daily bar of ``day`` (a New York date), as the grouped endpoint."""
        lo = _ms(day)
        hi = lo + 86_400_000
        results = [{"T": ticker, **bar} for (ticker, span), bars in sorted(self.bars.items())
                   if span == "1/day" for bar in bars if lo <= bar["t"] < hi]
        body = {"adjusted": True, "queryCount": len(results), "resultsCount": len(results),
                "status": "OK", "request_id": f"standin-grouped-{day}", "results": results}
        return self._ok("/v2/aggs/grouped/locale/us/market/stocks/{date}", body)


def _ms(value: str, *, end: bool = False) -> int:
    if value.isdigit():
        return int(value)
    day = date.fromisoformat(value)
    ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    return ms + (86_400_000 - 1 if end else 0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RunningStandIn:
    """Serve a ``StandIn`` on a free local port in a background thread."""

    def __init__(self, standin: StandIn) -> None:
        self.standin = standin
        app = Starlette(routes=[Route("/{path:path}", standin.dispatch)])
        port = _free_port()
        standin.base_url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> StandIn:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("stand-in server did not start")
            time.sleep(0.01)
        return self.standin

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
