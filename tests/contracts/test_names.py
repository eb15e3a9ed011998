"""Redis names follow one convention and the builders refuse ids that would break keys."""

from __future__ import annotations

import re

import pytest

from tickstock.contracts import names


def test_every_new_name_follows_the_convention() -> None:
    pattern = re.compile(r"^tickstock:[a-z_]+:[a-z_]+$")
    values = {a: v for a, v in vars(names).items() if a.isupper() and isinstance(v, str)}
    for attr, value in values.items():
        if attr.startswith("LEGACY_") and attr.endswith("_CHANNEL"):
            assert value.startswith("tickstock.jobs."), attr
        elif attr.endswith("_PREFIX"):
            assert re.match(r"^tickstock:[a-z]+:([a-z]+:)?$", value), attr
        elif attr not in ("PREFIX", "ENVELOPE_FIELD", "HEARTBEAT_PATTERN"):
            assert pattern.match(value), (attr, value)
    streams = [v for a, v in values.items() if a.endswith("_STREAM")]
    assert len(set(streams)) == len(streams)


def test_builders() -> None:
    assert names.job_key("abc-1") == "tickstock:job:abc-1"
    assert names.run_key("r1") == "tickstock:run:r1"
    key = names.heartbeat_key("worker", "worker-host-12")
    assert key == "tickstock:heartbeat:worker:worker-host-12"
    assert names.parse_heartbeat_key(key) == ("worker", "worker-host-12")


@pytest.mark.parametrize("bad", ["", "a:b", "a b", "x\n"])
def test_builders_refuse_bad_ids(bad: str) -> None:
    with pytest.raises(ValueError):
        names.job_key(bad)
