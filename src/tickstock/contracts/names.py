"""Every Redis name TickStock uses, in one place (DESIGN.md §2).

Convention: ``tickstock:<area>:<name>``, colons as Redis keys usually are. Nothing outside this
module writes a Redis key, stream, channel or consumer-group name as a literal; code imports the
constant or calls the builder below.

Streams (durable, at-least-once, consumer groups):
    COMMANDS_STREAM   commands to the pipeline (trigger daily processing, cancel, ...)
    JOBS_STREAM       jobs for workers (historical load, file import, ...)
    BATCHES_STREAM    symbol batches of a daily-run phase, shared by any number of workers
    DEAD_LETTER_STREAM  entries that could not be processed, with the reason

Events (best effort, capped, for live views):
    EVENTS_STREAM     capped stream every event goes to; browsers catch up from it
    EVENTS_CHANNEL    pub/sub mirror of the event stream for ad-hoc observers

Keys:
    job_key(job_id)                 hash, read model of one job (TTL, written by the executor)
    run_key(run_id)                 hash, read model of one daily run (TTL, written by the executor)
    heartbeat_key(role, instance)   JSON string with TTL, one per process instance
"""

from __future__ import annotations

from typing import Final

PREFIX: Final = "tickstock"

# -- durable streams --------------------------------------------------------------------------
COMMANDS_STREAM: Final = "tickstock:commands:stream"
JOBS_STREAM: Final = "tickstock:jobs:stream"
BATCHES_STREAM: Final = "tickstock:batches:stream"
DEAD_LETTER_STREAM: Final = "tickstock:deadletter:stream"

#: Every stream the bus consumes with a group; each one's malformed entries are dead-lettered.
DURABLE_STREAMS: Final = (COMMANDS_STREAM, JOBS_STREAM, BATCHES_STREAM)
#: The kind of message (``Payload.kind``) each durable stream carries; others are refused.
STREAM_KINDS: Final = {COMMANDS_STREAM: "command", JOBS_STREAM: "job", BATCHES_STREAM: "batch"}

# -- events -----------------------------------------------------------------------------------
EVENTS_STREAM: Final = "tickstock:events:stream"
EVENTS_CHANNEL: Final = "tickstock:events:live"

# -- consumer groups (names of groups, not keys) ----------------------------------------------
#: Workers share jobs, commands and batches: each entry goes to exactly one worker.
WORKERS_GROUP: Final = "tickstock:group:workers"
#: The scheduler's own group on the commands stream, for schedule commands.
SCHEDULER_GROUP: Final = "tickstock:group:scheduler"

# -- stream entry field -----------------------------------------------------------------------
#: The one field of a stream entry: the encoded envelope (JSON bytes).
ENVELOPE_FIELD: Final = "envelope"

# -- keys -------------------------------------------------------------------------------------
JOB_KEY_PREFIX: Final = "tickstock:job:"
RUN_KEY_PREFIX: Final = "tickstock:run:"
DEAD_LETTER_MARK_PREFIX: Final = "tickstock:deadletter:mark:"
HEARTBEAT_KEY_PREFIX: Final = "tickstock:heartbeat:"
#: ``SCAN MATCH`` pattern of every heartbeat key.
HEARTBEAT_PATTERN: Final = HEARTBEAT_KEY_PREFIX + "*"


def job_key(job_id: str) -> str:
    """Hash holding the read model of job ``job_id``: ``tickstock:job:{id}``."""
    _check_part("job_id", job_id)
    return JOB_KEY_PREFIX + job_id


def run_key(run_id: str) -> str:
    """Hash holding the read model of daily run ``run_id``: ``tickstock:run:{id}``."""
    _check_part("run_id", run_id)
    return RUN_KEY_PREFIX + run_id


def heartbeat_key(role: str, instance: str) -> str:
    """Heartbeat of one process: ``tickstock:heartbeat:{role}:{instance}``."""
    _check_part("role", role)
    if not instance or any(c.isspace() for c in instance):
        raise ValueError(f"instance {instance!r} must be non-empty without whitespace")
    return f"{HEARTBEAT_KEY_PREFIX}{role}:{instance}"


def parse_heartbeat_key(key: str) -> tuple[str, str]:
    """``(role, instance)`` of a heartbeat key (the instance may contain colons)."""
    if not key.startswith(HEARTBEAT_KEY_PREFIX):
        raise ValueError(f"{key!r} is not a heartbeat key")
    role, _, instance = key[len(HEARTBEAT_KEY_PREFIX):].partition(":")
    return role, instance


def dead_letter_mark_key(stream: str, entry_id: str) -> str:
    """Marker that entry ``entry_id`` of ``stream`` is already dead-lettered, so several readers
    of a non-group stream (the event stream) record it once."""
    return f"{DEAD_LETTER_MARK_PREFIX}{stream}:{entry_id}"


def _check_part(what: str, value: str) -> None:
    if not value or ":" in value or any(c.isspace() for c in value):
        raise ValueError(f"{what} {value!r} must be non-empty, without ':' or whitespace")


# -- legacy (seed 003) ------------------------------------------------------------------------
# Pub/sub channels of the old system. Accepted by the worker's compatibility adapter
# (``tickstock.pipeline.seed_compat``) and turned into normal jobs; never used for new work.
LEGACY_DATA_LOAD_CHANNEL: Final = "tickstock.jobs.data_load"
LEGACY_CONTROL_CHANNEL: Final = "tickstock.jobs.control"
LEGACY_SEEN_PREFIX: Final = "tickstock:legacy:seen:"


def legacy_seen_key(message_key: str) -> str:
    """Marker that a legacy pub/sub message was taken over already: every worker instance
    receives it, exactly one turns it into durable work."""
    return LEGACY_SEEN_PREFIX + message_key
