"""Property: whatever arrives on the seeds' channels (``tickstock.jobs.data_load``,
``tickstock.jobs.control``) — junk bytes, JSON of another shape, a seed message with a field
dropped or of the wrong type, an unknown job type, a 1 MB body — the compatibility adapter
either turns it into exactly one durable job or command, or dead-letters it with a reason; it
never raises, and nothing else is queued."""

from __future__ import annotations

import json
import uuid
from typing import Any

import redis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tickstock.bus import deadletter
from tickstock.contracts import names
from tickstock.contracts.envelope import decode
from tickstock.core.clock import LiveClock
from tickstock.pipeline.seed_compat import SeedCompatSubscriber

FIELDS = ("job_id", "job_type", "symbols", "universe_type", "timeframes", "years", "timespan",
          "requested_by", "timestamp")


def _seed(job_type: str) -> dict[str, Any]:
    """A valid message in the seed 003 shape."""
    base: dict[str, Any] = {"job_id": str(uuid.uuid4()), "job_type": job_type, "years": 1,
                            "timespan": "day", "requested_by": "admin_ui",
                            "timestamp": "2025-01-22T10:30:00"}
    if job_type == "universe_seed":
        return {**base, "universe_type": "SP500"}
    if job_type == "multi_timeframe_load":
        return {**base, "symbols": ["AAPL", "msft"], "timeframes": ["hour", "day"]}
    return {**base, "symbols": ["AAPL", "MSFT"]}


SEEDS = st.sampled_from(["historical_load", "universe_seed", "multi_timeframe_load"]).map(_seed)
ODD_VALUES = st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
                       st.lists(st.integers(), max_size=3), st.booleans(),
                       st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


def _bodies() -> st.SearchStrategy[bytes]:
    dumped = SEEDS.map(lambda m: json.dumps(m).encode())
    return st.one_of(
        dumped,                                                                     # valid
        st.binary(max_size=200),                                                    # junk
        st.recursive(st.none() | st.integers() | st.text(max_size=10),
                     lambda c: st.lists(c, max_size=3), max_leaves=5).map(
            lambda v: json.dumps(v).encode()),                                      # other JSON
        st.tuples(SEEDS, st.sampled_from(FIELDS)).map(
            lambda p: json.dumps({k: v for k, v in p[0].items() if k != p[1]}).encode()),
        st.tuples(SEEDS, st.sampled_from(FIELDS), ODD_VALUES).map(
            lambda p: json.dumps({**p[0], p[1]: p[2]}).encode()),                   # wrong type
        SEEDS.map(lambda m: json.dumps({**m, "symbols": ["A"] * 300_000}).encode()),  # ~1.5 MB
    )


def _controls() -> st.SearchStrategy[bytes]:
    valid = st.builds(lambda i: {"action": "cancel", "job_id": str(i)}, st.uuids())
    return st.one_of(
        valid.map(lambda m: json.dumps(m).encode()),
        valid.map(lambda m: json.dumps({"command": "cancel", "job_id": m["job_id"]}).encode()),
        st.binary(max_size=100),
        st.tuples(valid, st.sampled_from(["action", "job_id"]), ODD_VALUES).map(
            lambda p: json.dumps({**p[0], p[1]: p[2]}).encode()),
    )


FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(channel=st.sampled_from([names.LEGACY_DATA_LOAD_CHANNEL, names.LEGACY_CONTROL_CHANNEL]),
       data=st.data())
def test_seed_channels_queue_or_dead_letter_everything(redis_url: str, channel: str,
                                                       data: st.DataObject) -> None:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    body = data.draw(_bodies() if channel == names.LEGACY_DATA_LOAD_CHANNEL else _controls())
    adapter = SeedCompatSubscriber(client, source="fuzz", clock=LiveClock())
    adapter.handle(channel, body)  # never raises
    stream = names.JOBS_STREAM if channel == names.LEGACY_DATA_LOAD_CHANNEL else (
        names.COMMANDS_STREAM)
    queued = client.xrange(stream)
    letters = deadletter.read(client)
    assert len(queued) + len(letters) == 1, (queued, letters)
    event("queued" if queued else "dead-lettered")
    other = names.COMMANDS_STREAM if stream == names.JOBS_STREAM else names.JOBS_STREAM
    assert client.xlen(other) == 0
    if queued:
        envelope = decode(queued[0][1][names.ENVELOPE_FIELD.encode()])
        message = json.loads(body)
        if channel == names.LEGACY_DATA_LOAD_CHANNEL:
            assert envelope.id == message["job_id"]  # the seed's job id is the job's id
            assert envelope.type == f"job.{message['job_type']}"
        else:
            assert envelope.type == "command.cancel"
            assert envelope.data.job_id == message["job_id"]  # type: ignore[attr-defined]
    else:
        [(_, letter)] = letters
        assert letter.stream == channel and letter.reason
    client.close()
