"""``create_app``: the pipeline API's FastAPI application over one ``PipelineService``."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response, status
from fastapi.responses import JSONResponse

from tickstock import __version__
from tickstock.contracts.commands import (
    Cancel,
    Command,
    RetryFailedImports,
    TriggerDailyProcessing,
    TriggerDataImport,
    TriggerIndicatorProcessing,
    TriggerPatternDetection,
    UpdateSchedule,
)
from tickstock.core.errors import NotFoundError
from tickstock.pipeline.api.auth import token_guard
from tickstock.pipeline.api.models import (
    CommandOut,
    HealthOut,
    ImportFailureOut,
    RunOut,
    RunPage,
    ScheduleOut,
)
from tickstock.pipeline.daily.service import PipelineService

HealthCheck = Callable[[], Mapping[str, str]]
REQUESTER = "api"
_WAIT = Query(5.0, ge=0, le=30, description="Seconds to wait for the command's answer.")


def create_app(service: PipelineService, *, token: str, health: HealthCheck) -> FastAPI:
    """The application. ``health`` returns ``{check: "ok" | reason}`` for ``GET /health``."""
    app = FastAPI(
        title="TickStock pipeline API",
        version=__version__,
        description="The producer's API: daily processing runs, schedule and triggers. "
        "Every endpoint but /health needs the API token (Authorization: Bearer <token>).",
    )

    @app.exception_handler(NotFoundError)
    async def _not_found(request: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.get("/health", response_model=HealthOut, tags=["health"])
    def get_health(response: Response) -> HealthOut:
        """Liveness and dependencies (no token needed; reveals no data)."""
        checks = dict(health())
        ok = all(v == "ok" for v in checks.values())
        response.status_code = 200 if ok else 503
        return HealthOut(status="ok" if ok else "degraded", version=__version__, checks=checks)

    guarded = APIRouter(dependencies=[Depends(token_guard(token))])
    _run_routes(guarded, service)
    _trigger_routes(guarded, service)
    _schedule_routes(guarded, service)
    app.include_router(guarded)
    return app


def _answer(service: PipelineService, command: Command, wait: float, response: Response) -> CommandOut:
    command = command.model_copy(update={"requested_by": command.requested_by or REQUESTER})
    receipt = service.submit(command, wait_s=wait)
    response.status_code = status.HTTP_409_CONFLICT if receipt.status == "rejected" else \
        status.HTTP_202_ACCEPTED
    return CommandOut.of(receipt)


_COMMAND_RESPONSES: dict[int | str, dict[str, object]] = {
    202: {"description": "Accepted (or submitted, when no answer came within `wait`)."},
    409: {"model": CommandOut, "description": "Rejected; `reason` says why."},
}


def _run_routes(router: APIRouter, service: PipelineService) -> None:
    @router.get("/runs/current", response_model=RunOut | None, tags=["runs"])
    def current_run() -> RunOut | None:
        """The active run, else the latest one; null when none ever ran."""
        view = service.run_status()
        return None if view is None else RunOut.of(view)

    @router.get("/runs", response_model=RunPage, tags=["runs"])
    def run_history(
        page: int = Query(1, ge=1), page_size: int = Query(20, ge=1, le=200),
        run_status: str | None = Query(None, alias="status",
                                       pattern="^(pending|running|completed|failed|cancelled)$"),
    ) -> RunPage:
        """Run history, newest first, paged."""
        items, total = service.history(page=page, page_size=page_size, status=run_status)
        return RunPage(items=[RunOut.of(v) for v in items], page=page, page_size=page_size,
                       total=total)

    @router.get("/runs/{run_id}", response_model=RunOut, tags=["runs"])
    def run_status(run_id: str) -> RunOut:
        """One run with per-phase progress (percent, ETA)."""
        view = service.run_status(run_id)
        assert view is not None
        return RunOut.of(view)

    @router.post("/runs/{run_id}/cancel", response_model=CommandOut, tags=["runs"],
                 status_code=202, responses=_COMMAND_RESPONSES)
    def cancel_run(run_id: str, response: Response, wait: float = _WAIT) -> CommandOut:
        """Cancel a run: work stops at the next batch boundary."""
        return _answer(service, Cancel(run_id=run_id), wait, response)

    @router.get("/imports/failures", response_model=list[ImportFailureOut], tags=["imports"])
    def import_failures(source_id: str | None = None) -> list[ImportFailureOut]:
        """Open per-symbol import failures (what "retry failed imports" retries)."""
        return [ImportFailureOut.of(f) for f in service.import_failures(source_id)]


def _trigger_routes(router: APIRouter, service: PipelineService) -> None:
    @router.post("/runs", response_model=CommandOut, tags=["runs"], status_code=202,
                 responses=_COMMAND_RESPONSES)
    def trigger_run(body: TriggerDailyProcessing, response: Response,
                    wait: float = _WAIT) -> CommandOut:
        """Start a daily processing run now (409 with the reason while one is active, unless
        `queue_if_busy`)."""
        return _answer(service, body, wait, response)

    @router.post("/imports", response_model=CommandOut, tags=["imports"], status_code=202,
                 responses=_COMMAND_RESPONSES)
    def trigger_import(body: TriggerDataImport, response: Response,
                       wait: float = _WAIT) -> CommandOut:
        """Run only the data-import phase for a selection."""
        return _answer(service, body, wait, response)

    @router.post("/imports/retry", response_model=CommandOut, tags=["imports"], status_code=202,
                 responses=_COMMAND_RESPONSES)
    def retry_imports(body: RetryFailedImports, response: Response,
                      wait: float = _WAIT) -> CommandOut:
        """Re-import the open import failures (all, or of one run/job, or some symbols)."""
        return _answer(service, body, wait, response)

    @router.post("/indicators", response_model=CommandOut, tags=["analysis"], status_code=202,
                 responses=_COMMAND_RESPONSES)
    def trigger_indicators(body: TriggerIndicatorProcessing, response: Response,
                           wait: float = _WAIT) -> CommandOut:
        """Compute indicators for a selection (bars without values yet)."""
        return _answer(service, body, wait, response)

    @router.post("/patterns", response_model=CommandOut, tags=["analysis"], status_code=202,
                 responses=_COMMAND_RESPONSES)
    def trigger_patterns(body: TriggerPatternDetection, response: Response,
                         wait: float = _WAIT) -> CommandOut:
        """Detect patterns for a selection (bars not scanned yet)."""
        return _answer(service, body, wait, response)


def _schedule_routes(router: APIRouter, service: PipelineService) -> None:
    @router.get("/schedule", response_model=ScheduleOut, tags=["schedule"])
    def get_schedule() -> ScheduleOut:
        """The daily schedule and when the next run is due."""
        return ScheduleOut.of(service.schedule())

    @router.put("/schedule", response_model=CommandOut, tags=["schedule"], status_code=202,
                responses=_COMMAND_RESPONSES)
    def set_schedule(body: UpdateSchedule, response: Response, wait: float = _WAIT) -> CommandOut:
        """Change the schedule (fields left out keep their value)."""
        return _answer(service, body, wait, response)
