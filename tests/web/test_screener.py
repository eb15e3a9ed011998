"""The screener over real data: indicator conditions, recent patterns, sorting, and saved
screens that belong to one user.

Oracle: TA-Lib run here over the same ../shared/data closes the seed stored (RSI(14) of the
newest bar; CDLENGULFING within the last 30 days of each symbol's data)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import talib

from tickstock.web.config import WebDeps

from .conftest import USER, Server, login
from .seed import BARS, SYMBOLS, UNIVERSE, _rows, seed


def _oracle(data: Path) -> tuple[dict[str, float], set[str]]:
    rsi: dict[str, float] = {}
    engulfed: set[str] = set()
    for symbol in SYMBOLS:
        rows = _rows(data / "daily" / f"{symbol}.csv.gz")
        assert len(rows) == BARS
        o, h, lo, c = (np.array([float(r[k]) for r in rows]) for k in ("Open", "High", "Low",
                                                                         "Close"))
        rsi[symbol] = float(talib.RSI(c, 14)[-1])
        days = [datetime.fromisoformat(r["Date"]) for r in rows]
        hits = np.nonzero(talib.CDLENGULFING(o, h, lo, c))[0]
        if any(days[i] > days[-1] - timedelta(days=30) for i in hits):
            engulfed.add(symbol)
    return rsi, engulfed


def test_conditions_patterns_and_sorting_match_talib(
        user_client: tuple[httpx.Client, str], web_deps: WebDeps, shared_data: Path) -> None:
    seed(web_deps.pool, shared_data)
    rsi, engulfed = _oracle(shared_data)
    client, csrf = user_client
    h = {"X-CSRF-Token": csrf}
    screen = {"universe": UNIVERSE, "conditions": [{"indicator": "rsi_14", "op": "<",
                                                    "value": 55}],
              "sort": "rsi_14", "descending": True}
    res = client.post("/api/screener", json=screen, headers=h).json()
    want = sorted((s for s in SYMBOLS if rsi[s] < 55), key=lambda s: -rsi[s])
    assert 0 < len(want) < len(SYMBOLS), rsi  # the condition splits the universe
    assert [r["symbol"] for r in res["rows"]] == want
    assert [round(r["rsi_14"], 9) for r in res["rows"]] == [round(rsi[s], 9) for s in want]

    patterned = client.post("/api/screener", headers=h, json={
        "universe": UNIVERSE, "patterns": ["cdl_engulfing"], "pattern_days": 30}).json()
    assert {r["symbol"] for r in patterned["rows"]} == engulfed
    assert all(r["patterns"] == ["cdl_engulfing"] for r in patterned["rows"])

    bad = client.post("/api/screener", headers=h, json={"conditions": [
        {"indicator": "rsi_14; drop table bars", "op": "<", "value": 1}]})
    assert bad.status_code == 422 and "indicator" in bad.json()["message"]


def test_saved_screens_belong_to_their_user(user_client: tuple[httpx.Client, str],
                                            admin_client: tuple[httpx.Client, str],
                                            server: Server) -> None:
    client, csrf = user_client
    h = {"X-CSRF-Token": csrf}
    body = {"universe": UNIVERSE, "conditions": [{"indicator": "rsi_14", "op": "<",
                                                  "value": 30}]}
    assert client.put("/api/screens/oversold", json=body, headers=h).status_code == 200
    mine = client.get("/api/screens").json()["screens"]
    assert [(s["name"], s["definition"]["conditions"][0]["value"]) for s in mine] == [
        ("oversold", 30.0)]
    other, _ = admin_client
    assert other.get("/api/screens").json()["screens"] == []
    assert other.delete("/api/screens/oversold",
                        headers={"X-CSRF-Token": admin_client[1]}).status_code == 404
    # Saving again replaces; deleting removes; a new session of the same user sees the same.
    body["conditions"][0]["value"] = 25
    client.put("/api/screens/oversold", json=body, headers=h)
    with httpx.Client(base_url=server.url) as again:
        login(again, USER)
        saved = again.get("/api/screens").json()["screens"]
        assert saved[0]["definition"]["conditions"][0]["value"] == 25.0
    assert client.delete("/api/screens/oversold", headers=h).status_code == 204
    assert client.get("/api/screens").json()["screens"] == []
