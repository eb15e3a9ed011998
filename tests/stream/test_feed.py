"""The feed reads the client's raw frames itself: aggregates into bars, problems logged."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from datetime import UTC, datetime

import pytest

from tickstock.contracts.common import Timeframe
from tickstock.pipeline.stream.bars import LiveBar
from tickstock.pipeline.stream.feed import ProviderFeed

START_MS = 1_709_303_400_000  # 2024-03-01 14:30 UTC


def _agg(symbol: str, **fields: object) -> dict[str, object]:
    return {"ev": "AM", "sym": symbol, "v": 1200, "av": 99_000, "op": 10.0, "vw": 10.25,
            "o": 10.0, "c": 10.5, "h": 10.75, "l": 9.5, "a": 10.1, "z": 12, "s": START_MS,
            "e": START_MS + 60_000, **fields}


def test_a_frame_becomes_minute_bars_and_its_problem_statuses_are_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    got: list[LiveBar] = []
    feed = ProviderFeed("ws://127.0.0.1:1", "key", ["AAPL"], got.extend)
    frame = json.dumps([
        _agg("AAPL"),
        {"ev": "status", "status": "success", "message": "subscribed to: AM.AAPL"},
        {"ev": "status", "status": "error", "message": "not authorized: A.X"},
        {"ev": "status", "status": "error", "message": "not authorized: A.X"},
        _agg("MSFT", v=None, vw=None, e=START_MS + 30_000),
        _agg("NAN", o=math.nan),  # Python's json writes NaN; the processor skips the minute
    ])
    with caplog.at_level(logging.WARNING, logger="tickstock.pipeline.stream.feed"):
        asyncio.run(feed._on_messages(frame))
    start = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)
    assert got[0] == LiveBar("AAPL", Timeframe.MIN1, start, datetime(2024, 3, 1, 14, 31, tzinfo=UTC),
                             10.0, 10.75, 9.5, 10.5, 1200.0, 10.25)
    assert (got[1].symbol, got[1].volume, got[1].vwap) == ("MSFT", 0.0, None)
    assert got[1].end == datetime(2024, 3, 1, 14, 30, 30, tzinfo=UTC)  # a shorter aggregate
    assert got[2].symbol == "NAN" and math.isnan(got[2].open)
    assert [r.getMessage() for r in caplog.records] == [
        "provider error: not authorized: A.X (x2)"]
