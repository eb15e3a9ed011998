"""Everything that crosses a process boundary: the envelope, every command, job and event
payload, the shapes of heartbeats and read models, and every Redis name (``names``).

Both sides import this package; no Redis name or message field is written anywhere else.
``docs/contract.md`` is generated from it: ``python -m tickstock.contracts.docs --write``.
"""

from tickstock.contracts import commands, events, jobs, names
from tickstock.contracts.common import (
    ALL_PHASES,
    Payload,
    Phase,
    Symbol,
    Timeframe,
    UniverseName,
    percent,
)
from tickstock.contracts.envelope import (
    CONTRACT_VERSION,
    MAX_MESSAGE_BYTES,
    Envelope,
    decode,
)
from tickstock.contracts.events import JobStatus, RunStatus
from tickstock.contracts.registry import (
    COMMAND_TYPES,
    EVENT_TYPES,
    JOB_TYPES,
    MESSAGE_TYPES,
    model_for,
)
from tickstock.contracts.state import DeadLetter, Heartbeat, JobReadModel

__all__ = [
    "ALL_PHASES",
    "COMMAND_TYPES",
    "CONTRACT_VERSION",
    "EVENT_TYPES",
    "JOB_TYPES",
    "MAX_MESSAGE_BYTES",
    "MESSAGE_TYPES",
    "DeadLetter",
    "Envelope",
    "Heartbeat",
    "JobReadModel",
    "JobStatus",
    "Payload",
    "Phase",
    "RunStatus",
    "Symbol",
    "Timeframe",
    "UniverseName",
    "commands",
    "decode",
    "events",
    "jobs",
    "model_for",
    "names",
    "percent",
]
