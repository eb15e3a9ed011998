"""Read-only views of the durable streams for operators: what is queued, what is pending, who
consumes. Used by ``tickstock jobs list`` (queued jobs have no database row until a worker
starts them) and ``tickstock bus streams``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from tickstock.contracts import names
from tickstock.contracts.envelope import Envelope, decode
from tickstock.core.errors import ContractError

_FIELD = names.ENVELOPE_FIELD.encode()


@dataclass(frozen=True)
class GroupInfo:
    name: str
    consumers: int
    pending: int
    lag: int | None  # entries not yet delivered to the group (None: Redis cannot tell)


@dataclass(frozen=True)
class StreamInfo:
    stream: str
    length: int
    groups: tuple[GroupInfo, ...]


def stream_info(client: redis.Redis, stream: str) -> StreamInfo:
    """Length and consumer groups of ``stream`` (length 0 and no groups when it is missing)."""
    try:
        groups: Any = client.xinfo_groups(stream)
    except redis.ResponseError:
        return StreamInfo(stream, 0, ())
    infos = tuple(GroupInfo(name=_str(g["name"]), consumers=int(g["consumers"]),
                            pending=int(g["pending"]),
                            lag=int(g["lag"]) if g.get("lag") is not None else None)
                  for g in groups)
    return StreamInfo(stream, int(client.xlen(stream)), infos)


def queued(client: redis.Redis, stream: str, group: str, *, limit: int = 200) -> list[Envelope]:
    """Up to ``limit`` well-formed envelopes of ``stream`` not yet delivered to ``group``, oldest
    first (every entry, when the group does not exist yet). Malformed entries are left to the
    consumers, who dead-letter them."""
    after = "-"
    try:
        groups: Any = client.xinfo_groups(stream)
    except redis.ResponseError:
        return []  # no such stream
    for g in groups:
        if _str(g["name"]) == group:
            after = "(" + _str(g["last-delivered-id"])
    rows: Any = client.xrange(stream, min=after, count=limit)
    out: list[Envelope] = []
    for _, fields in rows:
        raw = fields.get(_FIELD)
        if raw is None:
            continue
        try:
            out.append(decode(raw))
        except ContractError:
            continue
    return out


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def find(client: redis.Redis, stream: str, envelope_id: str, *, scan: int = 1000
         ) -> Envelope | None:
    """The envelope ``envelope_id`` among the newest ``scan`` entries of ``stream``, delivered
    or not (a job a worker took but has not recorded yet is still found)."""
    rows: Any = client.xrevrange(stream, count=scan)
    for _, fields in rows:
        raw = fields.get(_FIELD)
        if raw is None or envelope_id.encode() not in raw:
            continue  # cheap filter before decoding
        try:
            envelope = decode(raw)
        except ContractError:
            continue
        if envelope.id == envelope_id:
            return envelope
    return None
