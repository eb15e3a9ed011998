"""Building blocks shared by every message: the payload base class and the value types."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints


class Payload(BaseModel):
    """Base of every message payload: frozen, unknown fields refused (field-name drift is an
    error at the boundary, not a silent ``None`` three services later).

    Each concrete payload sets ``message_type`` (the envelope's ``type``) and ``kind``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)

    message_type: ClassVar[str] = ""
    kind: ClassVar[Literal["command", "job", "batch", "event", ""]] = ""


class Timeframe(StrEnum):
    """Bar length. Values are the strings stored in the database."""

    MIN1 = "1min"
    MIN5 = "5min"
    MIN15 = "15min"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class Phase(StrEnum):
    """Phases of the daily processing run, in execution order."""

    DATA_IMPORT = "data_import"
    INDICATORS = "indicators"
    PATTERNS = "patterns"
    OUTCOMES = "outcomes"


ALL_PHASES: tuple[Phase, ...] = tuple(Phase)


#: A ticker: upper-case, 1-24 characters of A-Z, 0-9, '.' and '-' (``BRK.B``, ``BF-B``).
#: Input may be lower-case and padded; it is stripped and upper-cased. The check runs before
#: the normalisation (pydantic-core's order), hence the lenient pattern; it is done entirely in
#: pydantic-core because symbol lists are the bulk of what the bus validates.
Symbol = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_upper=True,
                      pattern=r"^\s*[A-Za-z0-9.\-]{1,24}\s*$"),
    Field(examples=["AAPL", "BRK.B"]),
]

#: A universe name as stored in ``universes.name``.
UniverseName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$", examples=["sp500"])]

#: A job, run or message id: printable, no whitespace or colon (it becomes part of Redis keys).
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,128}$")]

#: Who asked (user name, ``scheduler``, ``api``, ``cli``): free text, bounded.
Requester = Annotated[str, Field(min_length=1, max_length=128)]

ProviderName = Literal["massive", "files", "synthetic"]


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


#: A timezone-aware time, normalised to UTC; naive times are refused.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]

Percent = Annotated[float, Field(ge=0.0, le=100.0)]
Count = Annotated[int, Field(ge=0)]


def percent(processed: int, total: int) -> float:
    """Progress in percent, 0 when nothing is known yet, capped at 100."""
    if total <= 0:
        return 0.0
    return min(100.0, round(100.0 * processed / total, 2))
