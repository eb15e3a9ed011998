"""``/api/admin``: accounts, services health and the audit log. Admin only."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from tickstock.store import audit
from tickstock.store import users as user_store
from tickstock.web.security import Principal, api_admin, client_address, csrf_guard
from tickstock.web.services import services_snapshot

router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[Depends(csrf_guard)])
Username = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_.@\-]{3,64}$")]


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=r"^[A-Za-z0-9_.@\-]{3,64}$")
    password: str = Field(min_length=user_store.MIN_PASSWORD_LENGTH, max_length=1024)
    role: Literal["user", "admin"] = "user"


class RoleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "admin"]


class DisabledChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disabled: bool


def _public(user: user_store.User) -> dict[str, Any]:
    return {"user_id": user.user_id, "username": user.username, "role": user.role,
            "disabled": user.disabled, "created_at": user.created_at,
            "last_login_at": user.last_login_at, "locked_until": user.locked_until}


@router.get("/users", summary="Every account")
def list_users(request: Request, *, _: Principal = Depends(api_admin)) -> dict[str, Any]:
    with request.app.state.deps.pool.connection() as db:
        return {"users": [_public(u) for u in user_store.list_users(db)]}


@router.post("/users", status_code=201, summary="Create an account")
def create_user(request: Request, *, body: NewUser,
                who: Principal = Depends(api_admin)) -> dict[str, Any]:
    deps = request.app.state.deps
    with deps.pool.connection() as db:
        user = user_store.create_user(db, body.username, body.password, body.role)
        audit.record(db, actor=who.name, action="user.create", at=deps.clock.now(),
                     target=user.username, details={"role": user.role},
                     client=client_address(request))
    return _public(user)


def _guard_last_admin(db: Any, target: str, who: Principal) -> None:
    user = user_store.require_user(db, target)
    if user.is_admin and not user.disabled and user_store.count_admins(db) <= 1:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            "this is the last enabled admin: create another admin first")


@router.post("/users/{username}/role", summary="Change an account's role")
def set_role(request: Request, *, username: Username, body: RoleChange,
             who: Principal = Depends(api_admin)) -> dict[str, Any]:
    deps = request.app.state.deps
    with deps.pool.connection() as db, db.transaction():
        if body.role != "admin":
            _guard_last_admin(db, username, who)
        user = user_store.set_role(db, username, body.role)
        audit.record(db, actor=who.name, action="user.set_role", at=deps.clock.now(),
                     target=username, details={"role": body.role},
                     client=client_address(request))
    return _public(user)


@router.post("/users/{username}/disabled", summary="Disable or enable an account")
def set_disabled(request: Request, *, username: Username, body: DisabledChange,
                 who: Principal = Depends(api_admin)) -> dict[str, Any]:
    deps = request.app.state.deps
    with deps.pool.connection() as db, db.transaction():
        if body.disabled:
            _guard_last_admin(db, username, who)
        user = user_store.set_disabled(db, username, body.disabled)
        audit.record(db, actor=who.name, action="user.disable" if body.disabled else
                     "user.enable", at=deps.clock.now(), target=username,
                     client=client_address(request))
    return _public(user)


@router.get("/services", summary="Role instances, Redis, PostgreSQL, errors, dead letters")
def services(request: Request, *, _: Principal = Depends(api_admin)) -> dict[str, Any]:
    return services_snapshot(request.app.state.deps, request.app.state.hub)


@router.get("/audit", summary="Recent audit log entries")
def audit_log(request: Request, *, _: Principal = Depends(api_admin)) -> dict[str, Any]:
    with request.app.state.deps.pool.connection() as db:
        entries = audit.recent(db, 100)
    return {"entries": [e.__dict__ if hasattr(e, "__dict__") else
                        {k: getattr(e, k) for k in e.__slots__} for e in entries]}
