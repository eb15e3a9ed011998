"""The job read model: ``tickstock:job:{id}`` hashes, a fast expiring copy of the ``jobs`` row.

Written only by the worker executing the job (DESIGN.md §2), read by anyone. PostgreSQL is the
source of truth; a missing or expired hash means "ask the database".
"""

from __future__ import annotations

import logging
from typing import Any, Final

import redis

from tickstock.bus.connection import TRANSIENT_ERRORS
from tickstock.contracts import names
from tickstock.contracts.state import JobReadModel

log = logging.getLogger(__name__)

#: A finished job's hash lives a day: long enough for any page that shows it live.
JOB_READ_MODEL_TTL_S: Final = 24 * 3600


def write_job(client: redis.Redis, model: JobReadModel, *, ttl_s: int = JOB_READ_MODEL_TTL_S
              ) -> bool:
    """Replace the hash of ``model.job_id`` and refresh its TTL (one round trip); False when
    Redis was unavailable (the read model is best effort)."""
    key = names.job_key(model.job_id)
    try:
        pipe = client.pipeline(transaction=True)
        pipe.hset(key, mapping=model.to_hash())  # type: ignore[arg-type]
        pipe.expire(key, ttl_s)
        pipe.execute()
    except TRANSIENT_ERRORS as exc:
        log.warning("job read model not written: %s", exc, extra={"job_id": model.job_id})
        return False
    return True


def read_job(client: redis.Redis, job_id: str) -> JobReadModel | None:
    fields: Any = client.hgetall(names.job_key(job_id))
    return JobReadModel.from_hash(fields) if fields else None
