"""Message type string → payload model, for every command, job and event."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tickstock.contracts.commands import COMMANDS
from tickstock.contracts.common import Payload
from tickstock.contracts.events import EVENTS
from tickstock.contracts.jobs import BATCHES, JOBS
from tickstock.core.errors import ContractError


def _build() -> Mapping[str, type[Payload]]:
    table: dict[str, type[Payload]] = {}
    for model in (*COMMANDS, *JOBS, *BATCHES, *EVENTS):
        if not model.message_type or model.message_type in table:
            raise RuntimeError(f"{model.__name__} has an empty or duplicate message_type")
        table[model.message_type] = model
    return MappingProxyType(table)


#: Every message type of contract version ``CONTRACT_VERSION``.
MESSAGE_TYPES: Mapping[str, type[Payload]] = _build()

COMMAND_TYPES = frozenset(t for t, m in MESSAGE_TYPES.items() if m.kind == "command")
JOB_TYPES = frozenset(t for t, m in MESSAGE_TYPES.items() if m.kind == "job")
BATCH_TYPES = frozenset(t for t, m in MESSAGE_TYPES.items() if m.kind == "batch")
EVENT_TYPES = frozenset(t for t, m in MESSAGE_TYPES.items() if m.kind == "event")


def model_for(message_type: str) -> type[Payload]:
    """The payload model of ``message_type``; ContractError when it is unknown."""
    try:
        return MESSAGE_TYPES[message_type]
    except KeyError:
        raise ContractError(f"unknown message type {message_type!r}") from None
