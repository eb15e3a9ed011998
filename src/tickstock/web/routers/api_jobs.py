"""``/api/jobs``: submit data-load jobs (seed 003), follow them, cancel, retry failures."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request

from tickstock.contracts.commands import Cancel, RetryFailedImports
from tickstock.contracts.common import Symbol, Timeframe, UniverseName
from tickstock.contracts.jobs import (
    FileImport,
    HistoricalLoad,
    Job,
    MultiTimeframeLoad,
    UniverseSeed,
)
from tickstock.core.errors import DataValidationError
from tickstock.web import commands
from tickstock.web.reads import jobs as reads
from tickstock.web.routers.api_processing import Accepted
from tickstock.web.security import Principal, api_admin, client_address, csrf_guard

router = APIRouter(prefix="/api/jobs", tags=["jobs"], dependencies=[Depends(csrf_guard)])
JobType = Literal["historical_load", "universe_seed", "multi_timeframe_load", "file_import"]
MAX_YEARS = 30
JobId = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_.\-]{1,128}$")]


class JobRequest(BaseModel):
    """A data-load job. ``symbols`` or ``universe`` chooses what; ``start``/``end`` or
    ``years`` (back from now) the range; ``path`` is for ``file_import``."""

    model_config = ConfigDict(extra="forbid")

    job_type: JobType
    symbols: tuple[Symbol, ...] = Field(default=(), max_length=20000)
    universe: UniverseName | None = None
    timeframes: tuple[Timeframe, ...] = Field(default=(Timeframe.DAY,), min_length=1)
    start: datetime | None = None
    end: datetime | None = None
    years: float | None = Field(default=None, gt=0, le=MAX_YEARS)
    path: str | None = Field(default=None, min_length=1, max_length=4096)
    timeframe: Timeframe | None = None
    symbol: Symbol | None = None


def _range(req: JobRequest, now: datetime) -> tuple[datetime, datetime]:
    end = req.end or now
    if req.start is not None:
        start = req.start
    elif req.years is not None:
        start = end - timedelta(days=round(365.25 * req.years))
    else:
        raise DataValidationError("give start (and optionally end) or years")
    if start.tzinfo is None or end.tzinfo is None:
        raise DataValidationError("start and end need a timezone (e.g. 2024-01-02T00:00:00Z)")
    return start, end


def build_job(req: JobRequest, who: str, now: datetime) -> Job:
    """The contract job for ``req``; DataValidationError with the contract's reason."""
    try:
        if req.job_type == "file_import":
            if req.path is None:
                raise DataValidationError("file_import needs path")
            return FileImport(path=req.path, symbol=req.symbol, timeframe=req.timeframe,
                              requested_by=who)
        start, end = _range(req, now)
        common = {"timeframes": req.timeframes, "start": start, "end": end, "requested_by": who}
        if req.job_type == "universe_seed":
            if req.universe is None:
                raise DataValidationError("universe_seed needs universe")
            return UniverseSeed(universe=req.universe, **common)
        model = HistoricalLoad if req.job_type == "historical_load" else MultiTimeframeLoad
        return model(symbols=req.symbols, universe=req.universe, **common)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise DataValidationError(f"{where + ': ' if where else ''}{err['msg']}") from None


@router.post("", status_code=202, response_model=Accepted, summary="Submit a data-load job")
def submit(request: Request, *, body: JobRequest, who: Principal = Depends(api_admin)) -> Accepted:
    deps = request.app.state.deps
    job = build_job(body, who.name, deps.clock.now())
    env = commands.submit_job(deps, job, actor=who.name, client=client_address(request))
    return Accepted(command_id=env.id, command_type=env.type, job_id=env.id)


@router.get("", summary="Jobs, newest first")
def list_jobs(request: Request, *, active: bool | None = None,
              limit: int = Query(50, ge=1, le=500),
              _: Principal = Depends(api_admin)) -> dict[str, Any]:
    return {"jobs": reads.list_jobs(request.app.state.deps.pool, active=active, limit=limit)}


@router.get("/{job_id}", summary="One job with its failed symbols")
def get_job(request: Request, *, job_id: JobId, _: Principal = Depends(api_admin)) -> dict[str, Any]:
    job = reads.get_job(request.app.state.deps.pool, job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"no job {job_id!r} (a just-submitted job appears once a worker "
                            "takes it)")
    return job


@router.post("/{job_id}/cancel", status_code=202, response_model=Accepted,
             summary="Cancel a job (stops at the next symbol)")
def cancel(request: Request, *, job_id: JobId,
           who: Principal = Depends(api_admin)) -> Accepted:
    cmd = Cancel(job_id=job_id, requested_by=who.name)
    env = commands.send_command(request.app.state.deps, cmd, actor=who.name,
                                client=client_address(request), correlation_id=job_id)
    return Accepted(command_id=env.id, command_type=env.type, job_id=job_id)


@router.post("/{job_id}/retry", status_code=202, response_model=Accepted,
             summary="Retry the failed symbols of a job")
def retry(request: Request, *, job_id: JobId,
          who: Principal = Depends(api_admin)) -> Accepted:
    cmd = RetryFailedImports(source_id=job_id, requested_by=who.name)
    env = commands.send_command(request.app.state.deps, cmd, actor=who.name,
                                client=client_address(request), correlation_id=job_id)
    return Accepted(command_id=env.id, command_type=env.type, job_id=job_id)
