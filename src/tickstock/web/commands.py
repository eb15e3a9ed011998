"""Submitting commands and jobs: the web's only way to make the pipeline do something.

Every submission goes through ``tickstock.bus.submit`` (contract envelope on the durable
stream the pipeline consumes; a ``job.submitted`` event for jobs) and is recorded in the audit
log with who asked and from where.
"""

from __future__ import annotations

import logging
from typing import Any

from tickstock.bus import submit as bus_submit
from tickstock.contracts import Envelope
from tickstock.contracts.commands import Command
from tickstock.contracts.jobs import Job
from tickstock.store import audit
from tickstock.web.config import WebDeps

log = logging.getLogger(__name__)


def send_command(deps: WebDeps, command: Command, *, actor: str, client: str,
                 correlation_id: str | None = None) -> Envelope:
    """Put ``command`` on the commands stream; returns its envelope (its id is the command id)."""
    env = bus_submit.send_command(deps.redis, command, source=deps.config.instance,
                                  correlation_id=correlation_id)
    _audit(deps, actor, command.message_type, env, command.model_dump(mode="json"), client=client)
    log.info("command %s sent", command.message_type,
             extra={"command_id": env.id, "correlation_id": correlation_id})
    return env


def submit_job(deps: WebDeps, job: Job, *, actor: str, client: str) -> Envelope:
    """Put ``job`` on the jobs stream; the envelope id is the job id."""
    env = bus_submit.submit_job(deps.redis, job, source=deps.config.instance)
    _audit(deps, actor, job.message_type, env, job.model_dump(mode="json"), client=client)
    log.info("job %s submitted", job.message_type, extra={"job_id": env.id})
    return env


def _audit(deps: WebDeps, actor: str, action: str, env: Envelope, details: dict[str, Any],
           *, client: str) -> None:
    with deps.pool.connection() as db:
        audit.record(db, actor=actor, action=action, at=env.ts, target=env.id,
                     details=details, client=client)
