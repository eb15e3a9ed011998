"""Admin pages: daily processing (seed 001), historical data (seed 003), services, users.

Account changes on the users page are plain HTML forms (CSRF field, POST, redirect); the
other pages act through the JSON API with the CSRF header.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Form
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tickstock.contracts.common import ALL_PHASES, Timeframe
from tickstock.core.errors import DataValidationError, NotFoundError
from tickstock.store import audit
from tickstock.store import users as user_store
from tickstock.web.reads import jobs as job_reads
from tickstock.web.reads import market as market_reads
from tickstock.web.reads import processing as reads
from tickstock.web.rendering import render
from tickstock.web.security import Principal, client_address, csrf_guard, page_admin
from tickstock.web.services import market_status, services_snapshot

router = APIRouter(prefix="/admin", dependencies=[Depends(csrf_guard)], include_in_schema=False)


@router.get("")
def admin_home(_: Principal = Depends(page_admin)) -> Response:
    return RedirectResponse("/admin/daily-processing", status_code=303)


@router.get("/daily-processing")
def daily_processing(request: Request, *, who: Principal = Depends(page_admin)) -> Response:
    deps = request.app.state.deps
    return render(request, "admin/daily_processing.html", who,
                  run=reads.current_run(deps.pool), history=reads.history(deps.pool, 20),
                  market=market_status(deps), phases=[p.value for p in ALL_PHASES],
                  universes=market_reads.list_universes(deps.pool),
                  timeframes=[t.value for t in Timeframe])


@router.get("/historical-data")
def historical_data(request: Request, *, who: Principal = Depends(page_admin)) -> Response:
    deps = request.app.state.deps
    return render(request, "admin/historical_data.html", who,
                  jobs=job_reads.list_jobs(deps.pool, limit=30),
                  universes=market_reads.list_universes(deps.pool),
                  timeframes=[t.value for t in Timeframe])


@router.get("/services")
def services(request: Request, *, who: Principal = Depends(page_admin)) -> Response:
    deps = request.app.state.deps
    return render(request, "admin/services.html", who,
                  snapshot=services_snapshot(deps, request.app.state.hub))


def _users_page(request: Request, *, who: Principal, message: str | None = None,
                error: str | None = None, status_code: int = 200) -> Response:
    deps = request.app.state.deps
    with deps.pool.connection() as db:
        users = user_store.list_users(db)
        entries = audit.recent(db, 30, action_prefix="user.")
    return render(request, "admin/users.html", who, users=users, audit=entries,
                  message=message, error=error, status_code=status_code)


@router.get("/users")
def users(request: Request, *, who: Principal = Depends(page_admin)) -> Response:
    return _users_page(request, who=who, message=request.query_params.get("done"))


@router.post("/users")
def create_user(request: Request, *, username: str = Form(max_length=64),
                password: str = Form(max_length=1024),
                role: Literal["user", "admin"] = Form("user"),
                who: Principal = Depends(page_admin)) -> Response:
    deps = request.app.state.deps
    try:
        with deps.pool.connection() as db:
            user = user_store.create_user(db, username.strip(), password, role)
            audit.record(db, actor=who.name, action="user.create", at=deps.clock.now(),
                         target=user.username, details={"role": role},
                         client=client_address(request))
    except DataValidationError as exc:
        return _users_page(request, who=who, error=str(exc), status_code=422)
    return RedirectResponse(f"/admin/users?done=created+{user.username}", status_code=303)


@router.post("/users/{username}")
def change_user(request: Request, *, username: str,
                action: Literal["make_admin", "make_user", "disable", "enable"] = Form(),
                who: Principal = Depends(page_admin)) -> Response:
    deps = request.app.state.deps
    try:
        with deps.pool.connection() as db, db.transaction():
            target = user_store.require_user(db, username)
            demotes = action in ("make_user", "disable") and target.is_admin
            if demotes and not target.disabled and user_store.count_admins(db) <= 1:
                raise DataValidationError("this is the last enabled admin: create another first")
            if action in ("make_admin", "make_user"):
                user_store.set_role(db, username, "admin" if action == "make_admin" else "user")
            else:
                user_store.set_disabled(db, username, action == "disable")
            audit.record(db, actor=who.name, action=f"user.{action}", at=deps.clock.now(),
                         target=username, client=client_address(request))
    except (DataValidationError, NotFoundError) as exc:
        return _users_page(request, who=who, error=str(exc), status_code=422)
    return RedirectResponse(f"/admin/users?done={action}+{username}", status_code=303)
