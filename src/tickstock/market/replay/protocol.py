"""The Massive WebSocket wire format (``shared/data/massive/openapi_websocket.json``), server side.

Every server message is a JSON array of events. A client connects to ``/<market>`` (``/stocks``),
receives ``[{"ev":"status","status":"connected",…}]``, sends ``{"action":"auth","params":KEY}``,
then ``{"action":"subscribe","params":"AM.*,AM.MSFT"}``; per-minute aggregates arrive as ``AM``
events and per-second ones as ``A`` events, with the provider's short field names. This module
is the one place those names are written on our side.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from tickstock.core.timeutil import to_epoch_ms
from tickstock.market.replay.frames import MinuteFrame

# Status values (ConnectEvent, AuthEvent, SubscribeEvent, DisconnectEvent in the spec).
CONNECTED = "connected"
AUTH_SUCCESS = "auth_success"
AUTH_FAILED = "auth_failed"
AUTH_TIMEOUT = "auth_timeout"
AUTH_REQUIRED = "auth_required"
SUCCESS = "success"
ERROR = "error"
MAX_CONNECTIONS = "max_connections"
FORCE_DISCONNECT = "force_disconnect"
SLOW_CONSUMER = "slow_consumer"

MINUTE_AGG = "AM"
SECOND_AGG = "A"
CHANNELS = (MINUTE_AGG, SECOND_AGG)
MARKET_PATH = "/stocks"


def status(state: str, message: str) -> dict[str, str]:
    return {"ev": "status", "status": state, "message": message}


def encode(events: list[dict[str, Any]]) -> str:
    return json.dumps(events, separators=(",", ":"))


@dataclass(frozen=True)
class Action:
    """A parsed client message."""

    action: str
    params: str


def parse_action(raw: str | bytes) -> Action:
    """``{"action": …, "params": …}``; anything else is a ValueError with the reason."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("action"), str):
        raise ValueError("expected an object with an 'action' string")
    params = body.get("params", "")
    if not isinstance(params, str):
        raise ValueError("'params' must be a string")
    return Action(body["action"], params)


def parse_topics(params: str) -> list[tuple[str, str]]:
    """``"AM.*,AM.MSFT"`` → ``[("AM", "*"), ("AM", "MSFT")]``; a malformed topic is a ValueError."""
    topics = []
    for raw in params.split(","):
        part = raw.strip()
        if not part:
            continue
        channel, _, symbol = part.partition(".")
        if not symbol:
            raise ValueError(f"invalid subscription {part!r}: expected CHANNEL.SYMBOL")
        topics.append((channel, symbol))
    return topics


def aggregate_events(frame: MinuteFrame, indices: list[int], day: DayTotals) -> list[dict[str, Any]]:
    """``AM`` events for the bars of ``frame`` at ``indices``, with the day's running totals."""
    start_ms = to_epoch_ms(frame.start)
    end_ms = start_ms + 60_000
    events = []
    for i in indices:
        symbol = frame.symbols[i]
        volume = float(frame.volume[i])
        totals = day.add(symbol, float(frame.open[i]), volume, float(frame.vwap[i]))
        event: dict[str, Any] = {
            "ev": MINUTE_AGG, "sym": symbol, "v": int(volume), "av": int(totals[0]),
            "op": totals[1], "o": float(frame.open[i]), "c": float(frame.close[i]),
            "h": float(frame.high[i]), "l": float(frame.low[i]),
            "s": start_ms, "e": end_ms,
        }
        vwap = float(frame.vwap[i])
        if volume > 0 and not math.isnan(vwap):  # NaN is not JSON: a bar without a VWAP omits it
            event["vw"] = vwap
            event["a"] = totals[2]
            trades = int(frame.trades[i])
            if trades > 0:
                event["z"] = int(volume // trades)
        events.append(event)
    return events


def second_events(frame: MinuteFrame, indices: list[int]) -> list[list[dict[str, Any]]]:
    """Per-second ``A`` events that add up to each minute bar, grouped by second (4 seconds).

    A recorded minute has no ticks inside it, so the path is made up: open at second 0, the
    nearer extreme at 15, the other at 30, close at 45, a quarter of the volume each. Summed,
    they give exactly the minute's open, high, low, close and volume.
    """
    start_ms = to_epoch_ms(frame.start)
    seconds: list[list[dict[str, Any]]] = [[], [], [], []]
    for i in indices:
        o, hi, lo, c = (float(frame.open[i]), float(frame.high[i]),
                        float(frame.low[i]), float(frame.close[i]))
        path = (o, lo, hi, c) if c >= o else (o, hi, lo, c)
        volume = float(frame.volume[i])
        share = volume / 4.0
        for k, price in enumerate(path):
            s = start_ms + k * 15_000
            seconds[k].append({
                "ev": SECOND_AGG, "sym": frame.symbols[i], "v": share, "o": price, "c": price,
                "h": price, "l": price, "vw": price, "s": s, "e": s + 1000,
            })
    return seconds


class DayTotals:
    """Per-symbol running day figures the ``AM`` event carries: accumulated volume (``av``),
    official open (``op``) and the day's VWAP (``a``). Reset at each new trading day."""

    def __init__(self) -> None:
        self._day: object = None
        self._totals: dict[str, list[float]] = {}

    def start_day(self, day: object) -> None:
        if day != self._day:
            self._day = day
            self._totals = {}

    def add(self, symbol: str, open_: float, volume: float, vwap: float) -> tuple[float, float, float]:
        entry = self._totals.get(symbol)
        if entry is None:
            entry = self._totals[symbol] = [0.0, open_, 0.0]
        if volume > 0 and not math.isnan(vwap):  # NaN-safe: a minute without volume adds nothing
            entry[2] += vwap * volume
            entry[0] += volume
        day_vwap = entry[2] / entry[0] if entry[0] else open_
        return entry[0], entry[1], round(day_vwap, 4)
