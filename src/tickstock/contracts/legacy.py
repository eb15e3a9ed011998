"""Messages of the old system (seed 003), accepted only by the compatibility adapter.

On ``names.LEGACY_DATA_LOAD_CHANNEL`` (pub/sub)::

    {"job_id": "uuid-v4", "job_type": "historical_load|universe_seed|multi_timeframe_load",
     "symbols": ["AAPL", "MSFT"], "universe_type": "SP500", "timeframes": ["hour", "day"],
     "years": 1, "timespan": "day", "requested_by": "admin_ui",
     "timestamp": "2025-01-22T10:30:00"}

On ``names.LEGACY_CONTROL_CHANNEL``: ``{"action": "cancel", "job_id": "…"}`` (``command`` is
accepted for ``action``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from tickstock.contracts.common import Identifier, Symbol, Timeframe


class LegacyDataLoad(BaseModel):
    """A data-load job in the seeds' shape. Unknown extra keys are tolerated (the old app
    added fields over time); the ones below are checked."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    job_id: Identifier
    job_type: Literal["historical_load", "universe_seed", "multi_timeframe_load"]
    symbols: tuple[Symbol, ...] | None = None
    universe_type: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")] | None = None
    timeframes: tuple[Timeframe, ...] | None = None
    years: Annotated[float, Field(gt=0, le=50)] = 1
    timespan: Timeframe | None = None
    requested_by: Annotated[str, Field(max_length=128)] | None = None
    timestamp: str | None = Field(default=None, description="Naive local time in the seeds; "
                                  "informational only.")


class LegacyControl(BaseModel):
    """A control message in the seeds' shape: cancel a job."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    action: Literal["cancel"] = Field(validation_alias=AliasChoices("action", "command"))
    job_id: Identifier
