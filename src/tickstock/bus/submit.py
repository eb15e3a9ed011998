"""Submitting work: a job or command onto its durable stream, announced by an event."""

from __future__ import annotations

import redis

from tickstock.bus.events import EventPublisher
from tickstock.bus.streams import StreamPublisher
from tickstock.contracts import names
from tickstock.contracts.commands import Command
from tickstock.contracts.envelope import Envelope
from tickstock.contracts.events import JobSubmitted
from tickstock.contracts.jobs import Job
from tickstock.core.errors import ContractError


def submit_job(client: redis.Redis, job: Job, *, source: str, job_id: str | None = None,
               correlation_id: str | None = None) -> Envelope:
    """Queue ``job``; its id is the envelope id (given, or new). Raises ``redis.RedisError``
    when it could not be queued. A ``job.submitted`` event follows (best effort)."""
    if job.kind != "job":
        raise ContractError(f"{job.message_type} is not a job")
    envelope = Envelope.create(job, source=source, id=job_id, correlation_id=correlation_id)
    StreamPublisher(client).publish(names.JOBS_STREAM, envelope)
    EventPublisher(client, source=source).publish(
        JobSubmitted(job_id=envelope.id, job_type=job.message_type,
                     params=job.model_dump(mode="json"), requested_by=job.requested_by),
        correlation_id=envelope.id)
    return envelope


def send_command(client: redis.Redis, command: Command, *, source: str,
                 correlation_id: str | None = None) -> Envelope:
    """Queue ``command`` on the commands stream; answered by ``command.accepted/rejected``
    events whose ``command_id`` is the returned envelope's id."""
    if command.kind != "command":
        raise ContractError(f"{command.message_type} is not a command")
    envelope = Envelope.create(command, source=source, correlation_id=correlation_id)
    StreamPublisher(client).publish(names.COMMANDS_STREAM, envelope)
    return envelope
