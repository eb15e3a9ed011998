"""The envelope: every message type round-trips; every kind of malformed input is refused with
a reason that names what is wrong."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from tickstock.contracts import MAX_MESSAGE_BYTES, MESSAGE_TYPES, Envelope, decode
from tickstock.contracts import commands as c
from tickstock.contracts import jobs as j
from tickstock.contracts.examples import EXAMPLES as SAMPLES
from tickstock.contracts.examples import T0, T1
from tickstock.core.errors import ContractError


def test_every_message_type_has_a_sample() -> None:
    assert set(SAMPLES) == set(MESSAGE_TYPES)


@pytest.mark.parametrize("message_type", sorted(SAMPLES))
def test_round_trip(message_type: str) -> None:
    sent = Envelope.create(SAMPLES[message_type], source="test-1", correlation_id="job-1")
    received = decode(sent.encode())
    assert received == sent
    assert type(received.data) is MESSAGE_TYPES[message_type]
    assert received.type == message_type
    assert received.ts.utcoffset() == timedelta(0)


def _raw(**changes: object) -> bytes:
    obj = json.loads(Envelope.create(SAMPLES["job.historical_load"], source="t").encode())
    for key, value in changes.items():
        if value is ...:
            del obj[key]
        else:
            obj[key] = value
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (_raw(v=2), "unknown contract version 2"),
        (_raw(v="1"), "wrong type of field 'v'"),
        (_raw(v=...), "missing field 'v'"),
        (_raw(id=...), "missing field 'id'"),
        (_raw(extra=1), "unknown field 'extra'"),
        (_raw(type="job.unheard_of"), "unknown message type 'job.unheard_of'"),
        (_raw(type=5), "wrong type of field 'type'"),
        (_raw(data="x"), "wrong type of field 'data'"),
        (_raw(ts="2025-01-01T00:00:00"), "invalid field 'ts'"),
        (_raw(source=""), "invalid field 'source'"),
        (_raw(data={"symbols": ["AAPL"], "start": "2025-01-01T00:00:00Z"}),
         "missing field 'data.end'"),
        (_raw(data={"symbols": ["a b"], "start": "2025-01-01T00:00:00Z",
                    "end": "2025-02-01T00:00:00Z"}), "invalid field 'data.symbols.0'"),
        (_raw(data={"symbols": ["AAPL"], "start": "2025-01-01T00:00:00Z",
                    "end": "2025-02-01T00:00:00Z", "pattern_type": "x"}),
         "unknown field 'data.pattern_type'"),
        (b'{"v":1,"pad":"' + b"x" * (1024 * 1024) + b'"}', "too large"),
    ],
)
def test_malformed_is_refused_with_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(ContractError) as info:
        decode(raw)
    assert reason in str(info.value)


def test_encode_refuses_oversized_message() -> None:
    big = c.TriggerIndicatorProcessing(indicators=tuple(f"ind_{i:06d}" for i in range(30000)))
    with pytest.raises(ContractError, match="too large"):
        Envelope.create(big, source="t").encode()
    assert len(big.model_dump_json()) > MAX_MESSAGE_BYTES


def test_envelope_type_must_match_payload() -> None:
    with pytest.raises(ValidationError, match="needs HistoricalLoad"):
        Envelope(type="job.historical_load", ts=T0, source="t", data=c.Cancel(job_id="x"))


def test_times_are_aware_utc() -> None:
    eastern = timezone(timedelta(hours=-5))
    load = j.HistoricalLoad(universe="sp500", start=T0.astimezone(eastern), end=T1)
    assert load.start == T0 and load.start.utcoffset() == timedelta(0)
    with pytest.raises(ValidationError):
        j.HistoricalLoad(universe="sp500", start=datetime(2025, 1, 1), end=T1)


def test_payloads_are_frozen() -> None:
    cancel = c.Cancel(run_id="run-1")
    with pytest.raises(ValidationError):
        cancel.run_id = "other"  # type: ignore[misc]


def test_payload_accessor_checks_the_type() -> None:
    env = Envelope.create(c.Cancel(job_id="j"), source="t")
    assert env.payload(c.Cancel).job_id == "j"
    with pytest.raises(ContractError):
        env.payload(j.HistoricalLoad)
