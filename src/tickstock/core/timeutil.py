"""UTC time helpers. No naive datetimes anywhere: parse to aware UTC at the boundary."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")


def utc(dt: datetime) -> datetime:
    """Return ``dt`` in UTC; a naive datetime is refused, not guessed."""
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt.isoformat()} has no timezone")
    return dt.astimezone(UTC)


def parse_utc(text: str) -> datetime:
    """Parse ISO-8601 with an offset (``Z`` allowed) into aware UTC."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return utc(dt)


def iso(dt: datetime) -> str:
    """ISO-8601 UTC with a ``Z`` suffix, microseconds kept."""
    return utc(dt).isoformat().replace("+00:00", "Z")


def from_epoch_ms(ms: int | float) -> datetime:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC)


def to_epoch_ms(dt: datetime) -> int:
    return round(utc(dt).timestamp() * 1000)


def ny_datetime(day: date, at: time) -> datetime:
    """A New York wall-clock time on ``day``, as aware UTC (DST handled by zoneinfo)."""
    return datetime.combine(day, at, tzinfo=NEW_YORK).astimezone(UTC)


def session_day_start_utc(day: date) -> datetime:
    """Midnight UTC of ``day``: the stamp of a daily bar for that session."""
    return datetime.combine(day, time(0), tzinfo=UTC)
