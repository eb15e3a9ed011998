"""Heartbeats expire by themselves; the job read model is a hash with a TTL."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import redis

from tickstock.bus.heartbeat import HeartbeatThread, read_heartbeats
from tickstock.bus.readmodel import read_job, write_job
from tickstock.contracts import JobReadModel, JobStatus, names
from tickstock.core.clock import LiveClock


def test_heartbeat_lifecycle(client: redis.Redis) -> None:
    beat = HeartbeatThread(client, role="worker", instance="w-1", clock=LiveClock(),
                           interval_s=0.1, ttl_s=0.5).start()
    key = names.heartbeat_key("worker", "w-1")
    try:
        [hb] = read_heartbeats(client)
        assert (hb.role, hb.instance, hb.pid, hb.state) == ("worker", "w-1", os.getpid(), "starting")
        assert 0 < client.pttl(key) <= 500
        beat.state = "busy"
        assert read_heartbeats(client)[0].state == "busy"
        time.sleep(0.7)  # beats keep it alive past one TTL
        assert client.exists(key)
    finally:
        beat.stop()
    assert not client.exists(key)
    assert read_heartbeats(client) == []


def test_heartbeat_of_a_dead_process_expires(client: redis.Redis) -> None:
    beat = HeartbeatThread(client, role="stream", instance="s-1", clock=LiveClock(),
                           interval_s=0.1, ttl_s=0.3)
    beat.beat()  # one beat, then the "process" dies
    assert len(read_heartbeats(client)) == 1
    time.sleep(0.4)
    assert read_heartbeats(client) == []


def test_job_read_model(client: redis.Redis) -> None:
    model = JobReadModel(job_id="job-1", job_type="job.historical_load",
                         status=JobStatus.RUNNING, total=10, processed=4, failed=1, percent=40.0,
                         worker="w1", updated_at=datetime(2025, 1, 2, tzinfo=UTC))
    assert write_job(client, model, ttl_s=60)
    assert read_job(client, "job-1") == model
    assert 0 < client.ttl(names.job_key("job-1")) <= 60
    assert read_job(client, "job-2") is None
