"""``/api/processing/...``: the daily-processing endpoints of seed 001, on the new contract.

Reads come from PostgreSQL (written by the scheduler and workers); triggers, cancel, retry and
schedule changes are commands on the durable commands stream, answered 202 Accepted with the
command id (and the run id the requester can follow). Admin only, except market status.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from tickstock.contracts.commands import (
    Cancel,
    RetryFailedImports,
    TriggerDailyProcessing,
    TriggerDataImport,
    TriggerIndicatorProcessing,
    TriggerPatternDetection,
    UpdateSchedule,
)
from tickstock.contracts.common import (
    ALL_PHASES,
    Identifier,
    Phase,
    Symbol,
    Timeframe,
    UniverseName,
)
from tickstock.core.ids import new_id
from tickstock.web import commands
from tickstock.web.config import WebDeps
from tickstock.web.reads import processing as reads
from tickstock.web.security import Principal, api_admin, api_user, client_address, csrf_guard
from tickstock.web.services import market_status

RunId = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_.\-]{1,128}$")]
router = APIRouter(prefix="/api/processing", tags=["processing"],
                   dependencies=[Depends(csrf_guard)])


class Accepted(BaseModel):
    """A command was queued; follow ``run_id`` (or ``job_id``) in status and live events."""

    command_id: str
    command_type: str
    run_id: str | None = None
    job_id: str | None = None


class DailyTrigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phases: tuple[Phase, ...] = Field(default=ALL_PHASES, min_length=1)
    universes: tuple[UniverseName, ...] = ()
    timeframes: tuple[Timeframe, ...] = Field(default=(Timeframe.DAY,), min_length=1)
    skip_market_check: bool = False


class SelectionTrigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbols: tuple[Symbol, ...] = Field(default=(), max_length=20000)
    universes: tuple[UniverseName, ...] = ()
    timeframes: tuple[Timeframe, ...] = Field(default=(Timeframe.DAY,), min_length=1)


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: Identifier | None = Field(default=None, description="Absent: the active run.")


class RetryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_id: Identifier | None = None
    symbols: tuple[Symbol, ...] = Field(default=(), max_length=20000)


class ScheduleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    run_at: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
                               examples=["16:10"])
    universes: tuple[UniverseName, ...] | None = None
    timeframes: tuple[Timeframe, ...] | None = Field(default=None, min_length=1)
    phases: tuple[Phase, ...] | None = Field(default=None, min_length=1)


def _schedule_view(deps: WebDeps, sched: dict[str, Any] | None) -> dict[str, Any] | None:
    if sched is None:
        return None
    nxt = (reads.next_run_at(sched, deps.calendar, deps.clock.now())
           if deps.calendar is not None else None)
    return {**sched, "run_at": sched["run_at"].strftime("%H:%M"), "next_run_at": nxt}


@router.get("/daily/status", summary="Current (or last) run with per-phase progress")
def daily_status(request: Request, *, _: Principal = Depends(api_admin)) -> dict[str, Any]:
    deps = request.app.state.deps
    run, sched, failures = reads.status(deps.pool)
    return {
        "run": run,
        "schedule": _schedule_view(deps, sched),
        "open_failures": failures,
        "market": market_status(deps),
        "as_of": deps.clock.now(),
    }


@router.get("/daily/runs/{run_id}", summary="One run with its phases")
def daily_run(request: Request, *, run_id: RunId, _: Principal = Depends(api_admin)) -> dict[str, Any]:
    found = reads.run(request.app.state.deps.pool, run_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no run {run_id!r}")
    return found


@router.post("/daily/trigger", status_code=202, response_model=Accepted,
             summary="Start a daily processing run")
def daily_trigger(request: Request, *, body: DailyTrigger | None = None,
                  who: Principal = Depends(api_admin)) -> Accepted:
    body = body or DailyTrigger()
    run_id = new_id()
    cmd = TriggerDailyProcessing(run_id=run_id, requested_by=who.name, **body.model_dump())
    env = commands.send_command(request.app.state.deps, cmd, actor=who.name,
                                client=client_address(request), correlation_id=run_id)
    return Accepted(command_id=env.id, command_type=env.type, run_id=run_id)


@router.get("/daily/history", summary="Past runs, newest first")
def daily_history(request: Request, *, limit: int = Query(20, ge=1, le=200),
                  offset: int = Query(0, ge=0, le=100000),
                  _: Principal = Depends(api_admin)) -> dict[str, Any]:
    runs = reads.history(request.app.state.deps.pool, limit, offset)
    return {"runs": runs, "limit": limit, "offset": offset}


@router.get("/daily/schedule", summary="The daily schedule and its next run time")
def get_schedule(request: Request, *, _: Principal = Depends(api_admin)) -> dict[str, Any]:
    deps = request.app.state.deps
    return {"schedule": _schedule_view(deps, reads.schedule(deps.pool))}


@router.post("/daily/schedule", status_code=202, response_model=Accepted,
             summary="Change the schedule (fields left out keep their value)")
def update_schedule(request: Request, *, body: ScheduleUpdate,
                    who: Principal = Depends(api_admin)) -> Accepted:
    cmd = UpdateSchedule(requested_by=who.name, **body.model_dump())
    env = commands.send_command(request.app.state.deps, cmd, actor=who.name,
                                client=client_address(request))
    return Accepted(command_id=env.id, command_type=env.type)


@router.post("/daily/cancel", status_code=202, response_model=Accepted,
             summary="Cancel the active run (or the named one)")
def daily_cancel(request: Request, *, body: CancelRequest | None = None,
                 who: Principal = Depends(api_admin)) -> Accepted:
    deps = request.app.state.deps
    run_id = body.run_id if body else None
    if run_id is None:
        current = reads.current_run(deps.pool)
        if current is None or current["status"] not in reads.ACTIVE:
            raise HTTPException(status.HTTP_409_CONFLICT, "no run is active: nothing to cancel")
        run_id = current["run_id"]
    cmd = Cancel(run_id=run_id, requested_by=who.name)
    env = commands.send_command(deps, cmd, actor=who.name, client=client_address(request),
                                correlation_id=run_id)
    return Accepted(command_id=env.id, command_type=env.type, run_id=run_id)


@router.get("/market/status", summary="Market open/closed, early close, next open and close")
def market(request: Request, *, _: Principal = Depends(api_user)) -> dict[str, Any]:
    return market_status(request.app.state.deps)


def _selection(request: Request, who: Principal, model: type[TriggerDataImport]
               | type[TriggerIndicatorProcessing] | type[TriggerPatternDetection],
               *, body: SelectionTrigger) -> Accepted:
    run_id = new_id()
    cmd = model(run_id=run_id, requested_by=who.name, **body.model_dump())
    env = commands.send_command(request.app.state.deps, cmd, actor=who.name,
                                client=client_address(request), correlation_id=run_id)
    return Accepted(command_id=env.id, command_type=env.type, run_id=run_id)


@router.post("/import/trigger", status_code=202, response_model=Accepted,
             summary="Run the data-import phase only")
def import_trigger(request: Request, *, body: SelectionTrigger | None = None,
                   who: Principal = Depends(api_admin)) -> Accepted:
    return _selection(request, who, TriggerDataImport, body=body or SelectionTrigger())


@router.post("/indicators/trigger", status_code=202, response_model=Accepted,
             summary="Recompute indicators")
def indicators_trigger(request: Request, *, body: SelectionTrigger | None = None,
                       who: Principal = Depends(api_admin)) -> Accepted:
    return _selection(request, who, TriggerIndicatorProcessing, body=body or SelectionTrigger())


@router.post("/patterns/trigger", status_code=202, response_model=Accepted,
             summary="Re-run pattern detection")
def patterns_trigger(request: Request, *, body: SelectionTrigger | None = None,
                     who: Principal = Depends(api_admin)) -> Accepted:
    return _selection(request, who, TriggerPatternDetection, body=body or SelectionTrigger())


@router.post("/import/retry", status_code=202, response_model=Accepted,
             summary="Retry failed imports (all, one job/run, or some symbols)")
def import_retry(request: Request, *, body: RetryRequest | None = None,
                 who: Principal = Depends(api_admin)) -> Accepted:
    body = body or RetryRequest()
    cmd = RetryFailedImports(requested_by=who.name, **body.model_dump())
    env = commands.send_command(request.app.state.deps, cmd, actor=who.name,
                                client=client_address(request))
    return Accepted(command_id=env.id, command_type=env.type)


@router.get("/import/failures", summary="Open per-symbol import failures")
def import_failures(request: Request, *,
                    source_id: str | None = Query(None, pattern=r"^[A-Za-z0-9_.\-]{1,128}$"),
                    limit: int = Query(200, ge=1, le=2000),
                    _: Principal = Depends(api_admin)) -> dict[str, Any]:
    return {"failures": reads.open_failures(request.app.state.deps.pool, source_id, limit)}
