"""Shapes of the Redis values that are not messages: heartbeats and read models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tickstock.contracts.common import Count, Percent, UtcDatetime
from tickstock.contracts.events import JobStatus

HeartbeatState = Literal["starting", "running", "idle", "busy", "draining", "stopping", "degraded"]


class Heartbeat(BaseModel):
    """Value of ``names.heartbeat_key(role, instance)``: JSON, refreshed well within its TTL."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: str
    instance: str
    host: str
    pid: Annotated[int, Field(ge=1)]
    version: str
    started_at: UtcDatetime
    state: HeartbeatState
    ts: UtcDatetime = Field(description="When this heartbeat was written.")


class JobReadModel(BaseModel):
    """Fields of the ``names.job_key(job_id)`` hash: a fast, expiring copy of the ``jobs`` row,
    written only by the executing worker. PostgreSQL stays the source of truth."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job_id: str
    job_type: str
    status: JobStatus
    total: Count = 0
    processed: Count = 0
    failed: Count = 0
    percent: Percent = 0.0
    worker: str = ""
    error: str = ""
    updated_at: UtcDatetime

    def to_hash(self) -> dict[str, str]:
        """Redis hash fields (strings)."""
        return {k: str(v) for k, v in self.model_dump(mode="json").items()}

    @classmethod
    def from_hash(cls, fields: dict[bytes, bytes] | dict[str, str]) -> JobReadModel:
        decoded = {(k.decode() if isinstance(k, bytes) else k):
                   (v.decode() if isinstance(v, bytes) else v) for k, v in fields.items()}
        return cls.model_validate(decoded)


class DeadLetter(BaseModel):
    """One entry of ``names.DEAD_LETTER_STREAM``: what could not be processed, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stream: str = Field(description="Stream the entry came from.")
    entry_id: str = Field(description="Its id in that stream.")
    group: str = ""
    consumer: str = ""
    reason: str
    deliveries: Count = 0
    message_type: str = Field(default="", description="The type, when it could be read.")
    original: str = Field(description="The original entry (its fields as JSON), possibly cut.")
    original_bytes: Count = Field(description="Size of the original entry.")
    truncated: bool = False
    ts: UtcDatetime

    def to_fields(self) -> dict[str, str]:
        return {k: str(v) if not isinstance(v, bool) else ("1" if v else "0")
                for k, v in self.model_dump(mode="json").items()}

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes] | dict[str, str]) -> DeadLetter:
        decoded = {(k.decode() if isinstance(k, bytes) else k):
                   (v.decode("utf-8", "replace") if isinstance(v, bytes) else v)
                   for k, v in fields.items()}
        return cls.model_validate(decoded)
