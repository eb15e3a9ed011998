"""Pages for signed-in users: market dashboard, symbol page, screener.

Pages render their frame and first data on the server; the page scripts then keep them
current from the live-push socket and the REST API (no polling, no reloads).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi import Path as PathParam
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tickstock.contracts.common import Timeframe
from tickstock.web.reads import market as reads
from tickstock.web.rendering import render
from tickstock.web.security import Principal, csrf_guard, page_user
from tickstock.web.services import market_status

router = APIRouter(dependencies=[Depends(csrf_guard)], include_in_schema=False)
TIMEFRAMES = [t.value for t in Timeframe]


@router.get("/")
def dashboard(request: Request, *, who: Principal = Depends(page_user)) -> Response:
    deps = request.app.state.deps
    return render(request, "dashboard.html", who, market=market_status(deps),
                  universes=reads.list_universes(deps.pool),
                  patterns=reads.pattern_names(deps.pool), timeframes=TIMEFRAMES)


@router.get("/symbols")
def symbol_search(request: Request, *, q: str = "", who: Principal = Depends(page_user)) -> Response:
    symbol = q.strip().upper()
    if symbol and reads.symbol_info(request.app.state.deps.pool, symbol) is not None:
        return RedirectResponse(f"/symbols/{symbol}", status_code=303)
    found = reads.search_symbols(request.app.state.deps.pool, symbol) if symbol else []
    return render(request, "symbol_search.html", who, q=q, found=found)


@router.get("/symbols/{symbol}")
def symbol_page(request: Request, *,
                symbol: Annotated[str, PathParam(pattern=r"^[A-Za-z0-9.\-]{1,24}$")],
                timeframe: Timeframe = Timeframe.DAY,
                who: Principal = Depends(page_user)) -> Response:
    deps = request.app.state.deps
    info = reads.symbol_info(deps.pool, symbol.upper())
    if info is None:
        return render(request, "error.html", who, status_code=404, status=404,
                      message=f"Unknown symbol {symbol.upper()}.")
    return render(request, "symbol.html", who, info=info, timeframe=timeframe.value,
                  timeframes=TIMEFRAMES,
                  latest=reads.latest_indicators(deps.pool, info["symbol"], timeframe.value))


@router.get("/screener")
def screener(request: Request, *, who: Principal = Depends(page_user)) -> Response:
    deps = request.app.state.deps
    return render(request, "screener.html", who, universes=reads.list_universes(deps.pool),
                  indicators=reads.indicator_names(deps.pool, "day"),
                  patterns=reads.pattern_names(deps.pool), timeframes=TIMEFRAMES)
