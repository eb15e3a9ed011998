"""Market-data API for signed-in users: universes, symbols, bars, indicators, patterns,
movers and breadth, the screener and saved screens."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi import Path as PathParam
from starlette.requests import Request

from tickstock.contracts.common import Timeframe
from tickstock.core.timeutil import utc
from tickstock.store import screens
from tickstock.web.reads import market as reads
from tickstock.web.screener import ScreenDefinition, run_screen
from tickstock.web.security import Principal, api_user, csrf_guard

router = APIRouter(prefix="/api", tags=["market"], dependencies=[Depends(csrf_guard)])
SymbolPath = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9.\-]{1,24}$")]
ScreenName = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9 _.\-]{1,64}$")]
NameList = Annotated[str, Query(max_length=2000, pattern=r"^[A-Za-z0-9_.:,\-]*$")]


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise HTTPException(422, f"{name} needs a timezone, e.g. 2024-01-02T00:00:00Z")
    return utc(value) if value is not None else None


def _names(value: str | None) -> list[str]:
    return [n for n in (value or "").split(",") if n][:50]


@router.get("/universes", summary="Universes with member counts")
def universes(request: Request, *, _: Principal = Depends(api_user)) -> dict[str, Any]:
    return {"universes": reads.list_universes(request.app.state.deps.pool)}


@router.get("/universes/{name}", summary="Members of a universe")
def universe(request: Request, *, name: Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")],
             _: Principal = Depends(api_user)) -> dict[str, Any]:
    members = reads.universe_symbols(request.app.state.deps.pool, name)
    return {"name": name, "symbols": sorted(members)}


@router.get("/symbols", summary="Find symbols by ticker or name prefix")
def symbols(request: Request, *, q: str = Query(min_length=1, max_length=24),
            _: Principal = Depends(api_user)) -> dict[str, Any]:
    return {"symbols": reads.search_symbols(request.app.state.deps.pool, q)}


@router.get("/bars/{symbol}", summary="OHLCV bars, oldest first, range [start, end)")
def bars(request: Request, *, symbol: SymbolPath, timeframe: Timeframe = Timeframe.DAY,
         start: datetime | None = None, end: datetime | None = None,
         limit: int = Query(500, ge=1, le=reads.MAX_BARS),
         _: Principal = Depends(api_user)) -> dict[str, Any]:
    rows = reads.bars(request.app.state.deps.pool, symbol.upper(), timeframe.value,
                      start=_aware(start, "start"), end=_aware(end, "end"), limit=limit)
    return {"symbol": symbol.upper(), "timeframe": timeframe.value, "bars": rows}


@router.get("/indicators/{symbol}", summary="Indicator series (names comma-separated)")
def indicators(request: Request, *, symbol: SymbolPath, names: NameList,
               timeframe: Timeframe = Timeframe.DAY, start: datetime | None = None,
               end: datetime | None = None,
               _: Principal = Depends(api_user)) -> dict[str, Any]:
    deps = request.app.state.deps
    begin = _aware(start, "start") or deps.clock.now() - timedelta(days=730)
    series = reads.indicator_series(deps.pool, symbol.upper(), timeframe.value, _names(names),
                                    start=begin, end=_aware(end, "end"))
    return {"symbol": symbol.upper(), "timeframe": timeframe.value, "series": series}


@router.get("/indicators/{symbol}/latest", summary="Newest value of every indicator")
def latest(request: Request, *, symbol: SymbolPath, timeframe: Timeframe = Timeframe.DAY,
           _: Principal = Depends(api_user)) -> dict[str, Any]:
    values = reads.latest_indicators(request.app.state.deps.pool, symbol.upper(), timeframe.value)
    return {"symbol": symbol.upper(), "timeframe": timeframe.value, "values": values}


@router.get("/indicator-names", summary="Indicator names that have values")
def indicator_names(request: Request, *, timeframe: Timeframe = Timeframe.DAY,
                    _: Principal = Depends(api_user)) -> dict[str, Any]:
    return {"names": reads.indicator_names(request.app.state.deps.pool, timeframe.value)}


@router.get("/patterns", summary="Pattern detections, newest first")
def patterns(request: Request, *,
             symbol: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9.\-]{1,24}$")] = None,
             universe: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")] = None,
             pattern: NameList | None = None,
             direction: Literal["bullish", "bearish", "neutral"] | None = None,
             timeframe: Timeframe | None = None,
             min_confidence: float = Query(0.0, ge=0.0, le=1.0),
             since: datetime | None = None, until: datetime | None = None,
             limit: int = Query(100, ge=1, le=2000),
             _: Principal = Depends(api_user)) -> dict[str, Any]:
    q = reads.DetectionQuery(
        symbol=symbol.upper() if symbol else None, universe=universe,
        patterns=tuple(_names(pattern)), direction=direction,
        timeframe=timeframe.value if timeframe else None, min_confidence=min_confidence,
        since=_aware(since, "since"), until=_aware(until, "until"), limit=limit)
    return {"detections": reads.detections(request.app.state.deps.pool, q)}


@router.get("/pattern-names", summary="Pattern names that have detections")
def pattern_names(request: Request, *, _: Principal = Depends(api_user)) -> dict[str, Any]:
    return {"names": reads.pattern_names(request.app.state.deps.pool)}


@router.get("/patterns/outcomes", summary="Outcome statistics (forward returns) per pattern")
def outcomes(request: Request, *, pattern: NameList, timeframe: Timeframe = Timeframe.DAY,
             _: Principal = Depends(api_user)) -> dict[str, Any]:
    rows = reads.outcomes(request.app.state.deps.pool, _names(pattern), timeframe.value)
    return {"outcomes": rows}


@router.get("/market/movers", summary="Top movers and breadth of a universe (daily bars)")
def movers(request: Request, *,
           universe: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")] = None,
           top: int = Query(10, ge=1, le=50),
           _: Principal = Depends(api_user)) -> dict[str, Any]:
    return reads.movers_and_breadth(request.app.state.deps.pool, universe, top)


@router.post("/screener", summary="Run a screen")
def screener(request: Request, *, screen: ScreenDefinition,
             _: Principal = Depends(api_user)) -> dict[str, Any]:
    return run_screen(request.app.state.deps.pool, screen)


@router.get("/screens", summary="Your saved screens")
def saved(request: Request, *, who: Principal = Depends(api_user)) -> dict[str, Any]:
    with request.app.state.deps.pool.connection() as db:
        found = screens.list_for(db, who.user.user_id)
    return {"screens": [{"name": s.name, "definition": s.definition,
                         "updated_at": s.updated_at} for s in found]}


@router.put("/screens/{name}", summary="Save (create or replace) a screen")
def save(request: Request, *, name: ScreenName, screen: ScreenDefinition,
         who: Principal = Depends(api_user)) -> dict[str, Any]:
    deps = request.app.state.deps
    with deps.pool.connection() as db:
        exists = any(s.name == name for s in screens.list_for(db, who.user.user_id))
        if not exists and screens.count(db, who.user.user_id) >= screens.MAX_SCREENS_PER_USER:
            raise HTTPException(status.HTTP_409_CONFLICT,
                                f"at most {screens.MAX_SCREENS_PER_USER} saved screens per user")
        saved_screen = screens.save(db, who.user.user_id, name, screen.model_dump(mode="json"),
                                    deps.clock.now())
    return {"name": saved_screen.name, "definition": saved_screen.definition}


@router.delete("/screens/{name}", status_code=204, summary="Delete a saved screen")
def delete(request: Request, *, name: ScreenName, who: Principal = Depends(api_user)) -> None:
    with request.app.state.deps.pool.connection() as db:
        screens.delete(db, who.user.user_id, name)
