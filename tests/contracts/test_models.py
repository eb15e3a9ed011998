"""Rules of individual payloads that a producer relies on being checked at the boundary."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tickstock.contracts import Timeframe
from tickstock.contracts import commands as c
from tickstock.contracts import events as e
from tickstock.contracts import jobs as j
from tickstock.contracts.common import percent
from tickstock.contracts.examples import T0, T1


def test_timeframes_are_the_database_values() -> None:
    assert [t.value for t in Timeframe] == ["1min", "5min", "15min", "hour", "day", "week", "month"]


@pytest.mark.parametrize("symbol", ["AAPL", "BRK.B", "BF-B", "A", "X" * 24, " msft "])
def test_valid_symbols(symbol: str) -> None:
    load = j.HistoricalLoad(symbols=(symbol,), start=T0, end=T1)
    assert load.symbols[0] == symbol.strip().upper()


@pytest.mark.parametrize("symbol", ["", "X" * 25, "AA PL", "AAPL$", "BRK/B", "ÄPL"])
def test_invalid_symbols(symbol: str) -> None:
    with pytest.raises(ValidationError):
        j.HistoricalLoad(symbols=(symbol,), start=T0, end=T1)


def test_historical_load_needs_one_target_and_an_ordered_range() -> None:
    with pytest.raises(ValidationError, match="exactly one of symbols"):
        j.HistoricalLoad(start=T0, end=T1)
    with pytest.raises(ValidationError, match="exactly one of symbols"):
        j.HistoricalLoad(symbols=("A",), universe="sp500", start=T0, end=T1)
    with pytest.raises(ValidationError, match="before"):
        j.HistoricalLoad(symbols=("A",), start=T1, end=T0)
    with pytest.raises(ValidationError):
        j.HistoricalLoad(symbols=("A",), timeframes=("2min",), start=T0, end=T1)


def test_cancel_needs_exactly_one_target() -> None:
    with pytest.raises(ValidationError):
        c.Cancel()
    with pytest.raises(ValidationError):
        c.Cancel(run_id="r", job_id="j")
    assert c.Cancel(run_id="r").job_id is None


@pytest.mark.parametrize("run_at", ["24:00", "9:30", "16:60", "1610", ""])
def test_schedule_time_is_hh_mm(run_at: str) -> None:
    with pytest.raises(ValidationError, match="run_at"):
        c.UpdateSchedule(run_at=run_at)


def test_update_schedule_keeps_unset_fields_unset() -> None:
    update = c.UpdateSchedule(run_at="09:45")
    assert update.enabled is None and update.universes is None and update.phases is None


def test_pattern_confidence_is_bounded() -> None:
    with pytest.raises(ValidationError):
        e.PatternDetected(symbol="A", timeframe="day", ts=T0, pattern="p", direction="bullish",
                          confidence=1.5)


def test_percent() -> None:
    assert percent(0, 0) == 0.0
    assert percent(1, 3) == 33.33
    assert percent(5, 4) == 100.0
