"""The dead-letter stream: entries that could not be processed, each with the reason.

A dead letter keeps the original entry (its fields as JSON, cut at ``ORIGINAL_LIMIT`` bytes so
a flood of oversized junk cannot fill Redis) plus where it came from. Nothing re-reads dead
letters automatically; ``tickstock bus dead-letters`` shows them to an operator.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

import redis

from tickstock.bus.metrics import DEAD_LETTERED
from tickstock.contracts import names
from tickstock.contracts.state import DeadLetter

#: Bytes of the original entry kept in a dead letter.
ORIGINAL_LIMIT: Final = 64 * 1024
#: Approximate bound of the dead-letter stream (dead letters are rare; this bounds a flood).
DEAD_LETTER_MAXLEN: Final = 5_000
#: How long the "already dead-lettered" mark of an event-stream entry lives.
_MARK_TTL_S: Final = 7 * 24 * 3600


def snapshot(fields: dict[bytes, bytes] | dict[str, Any] | None) -> tuple[str, int, bool]:
    """``(text, size, truncated)`` of an entry: the envelope text when it is the only field,
    else the fields as a JSON object; non-UTF-8 bytes are escaped, never lost silently."""
    if not fields:
        return "", 0, False
    decoded = {_text(k): _text(v) for k, v in fields.items()}
    if list(decoded) == [names.ENVELOPE_FIELD]:
        text = decoded[names.ENVELOPE_FIELD]
    else:
        text = json.dumps(decoded, ensure_ascii=False)
    size = len(text.encode("utf-8", "backslashreplace"))
    if size > ORIGINAL_LIMIT:
        return text.encode("utf-8", "backslashreplace")[:ORIGINAL_LIMIT].decode(
            "utf-8", "ignore"), size, True
    return text, size, False


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def make(stream: str, entry_id: str, fields: dict[bytes, bytes] | dict[str, Any] | None,
         reason: str, *, now: datetime, group: str = "", consumer: str = "",
         deliveries: int = 0, message_type: str = "") -> DeadLetter:
    original, size, truncated = snapshot(fields)
    return DeadLetter(stream=stream, entry_id=entry_id, group=group, consumer=consumer,
                      reason=reason[:2000], deliveries=deliveries, message_type=message_type,
                      original=original, original_bytes=size, truncated=truncated, ts=now)


def add(pipe: redis.Redis | Any, letter: DeadLetter, *, cause: str) -> None:
    """Queue the dead letter on ``pipe`` (a client or a pipeline)."""
    pipe.xadd(names.DEAD_LETTER_STREAM, letter.to_fields(),  # type: ignore[arg-type]
              maxlen=DEAD_LETTER_MAXLEN, approximate=True)
    DEAD_LETTERED.labels(letter.stream, cause).inc()


def add_once(client: redis.Redis, letter: DeadLetter, *, cause: str) -> bool:
    """Dead-letter an entry of a stream read by several independent readers exactly once."""
    mark = names.dead_letter_mark_key(letter.stream, letter.entry_id)
    if not client.set(mark, "1", nx=True, ex=_MARK_TTL_S):
        return False
    add(client, letter, cause=cause)
    return True


def read(client: redis.Redis, *, count: int = 50) -> list[tuple[str, DeadLetter]]:
    """The newest ``count`` dead letters, newest first."""
    rows: Any = client.xrevrange(names.DEAD_LETTER_STREAM, count=count)
    return [(entry_id.decode(), DeadLetter.from_fields(fields)) for entry_id, fields in rows]
