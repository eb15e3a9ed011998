"""Alert rules, scrape config and dashboard: valid, naming only metrics the code exports, and
the role-down rule firing on values scraped from a real exporter after a real process dies.

promtool (Debian package ``prometheus``) checks and evaluates the rules when it is installed;
without it the structure is validated here and the role-down expression is evaluated by
``_eval_role_down`` (same semantics, for that one expression).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml
from prometheus_client import REGISTRY, CollectorRegistry

from tickstock.contracts import names
from tickstock.ops import metrics
from tickstock.ops.metrics_pools import PoolCollector
from tickstock.ops.settings import Settings, load_settings

from .metrics_support import (
    ALERTS,
    DASHBOARD,
    NON_TICKSTOCK,
    PROMTOOL,
    ROLE_DOWN,
    SCRAPE_CONFIG,
    Sample,
    alert_rules,
    import_metric_modules,
    promtool_rules_test,
    referenced_names,
    registry_names,
    sample_names,
    scrape,
    series_selector,
    value,
)


def _exported_names() -> set[str]:
    """Every sample name the code can export: package metrics modules, the web app's registry,
    and the ops collectors (described, not collected: no I/O)."""
    from tickstock.ops.metrics_http import create_http_metrics
    from tickstock.web.metrics import create_metrics

    import_metric_modules()
    settings = load_settings({})
    state = metrics.StateCollector(settings, "postgresql://unused/x", "redis://unused:1/0")
    ops_families = [*state.describe(), *PoolCollector().describe(),
                    *metrics._BuildInfo("r", "i").collect()]
    api = CollectorRegistry()
    create_http_metrics("api", api)
    return (registry_names(REGISTRY, create_metrics().registry, api)
            | sample_names(ops_families) | NON_TICKSTOCK)


def test_rules_are_valid() -> None:
    document = yaml.safe_load(ALERTS.read_text())
    assert document["groups"], "no rule groups"
    alerts = set()
    for group in document["groups"]:
        assert group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert rule["alert"].startswith("TickStock") and rule["alert"] not in alerts
            alerts.add(rule["alert"])
            assert rule["labels"]["severity"] in {"warning", "critical"}
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
            assert str(rule["expr"]).count("(") == str(rule["expr"]).count(")")
    # what the issue asks to cover
    assert {"TickStockRoleDown", "TickStockDailyRunLate", "TickStockDeadLettersGrowing",
            "TickStockConsumerLagGrowing", "TickStockLiveFeedBehind"} <= alerts
    if PROMTOOL:
        for args in (["check", "rules", str(ALERTS)], ["check", "config", str(SCRAPE_CONFIG)]):
            done = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60,
                                  check=False)
            assert done.returncode == 0, done.stdout + done.stderr


def test_each_issue_rule_fires_on_its_condition_only(tmp_path: Path) -> None:
    """Each rule the issue asks for, fed series that cross its threshold (promtool); without
    promtool, each still names the metric it is about."""
    target = {"instance": "127.0.0.1:9101", "job": "tickstock-worker"}
    dead = {"stream": names.DEAD_LETTER_STREAM, "kind": "dead_letter"}
    group = {"stream": names.JOBS_STREAM, "kind": "durable", "group": names.WORKERS_GROUP}
    series = {  # 15 s apart, 0 .. 25 min
        "tickstock_daily_run_overdue_seconds": ({}, "0x40 4000x60"),
        "tickstock_redis_stream_last_entry_timestamp_seconds": (dead, "100x100"),
        "tickstock_consumer_group_lag": (group, "0+20x100"),
        "tickstock_stream_processing_lag_seconds": ({}, "45x100"),
        "tickstock_live_bars_behind_seconds": ({}, "200x100"),
    }
    rules = {str(r["alert"]): str(r["expr"]) for r in alert_rules()}
    for alert, metric in (("TickStockDailyRunLate", "tickstock_daily_run_overdue_seconds"),
                          ("TickStockDeadLettersGrowing", "dead_letter"),
                          ("TickStockConsumerLagGrowing", "tickstock_consumer_group_lag"),
                          ("TickStockLiveFeedBehind", "tickstock_stream_processing_lag_seconds"),
                          ("TickStockLiveBarsStale", "tickstock_live_bars_behind_seconds")):
        assert metric in rules[alert], alert
    if not PROMTOOL:
        return
    inputs = [{"series": series_selector(name, {**labels, **target}), "values": values}
              for name, (labels, values) in series.items()]
    inputs.append({"series": series_selector("tickstock_role_expected_instances",
                                             {"role": "stream", **target}), "values": "1x100"})
    warning, critical = {"severity": "warning"}, {"severity": "critical"}
    promtool_rules_test(PROMTOOL, tmp_path, inputs, [
        {"eval_time": "5m", "alertname": "TickStockDailyRunLate", "exp_alerts": []},
        {"eval_time": "11m", "alertname": "TickStockDailyRunLate",
         "exp_alerts": [{"exp_labels": critical}]},
        {"eval_time": "5m", "alertname": "TickStockDeadLettersGrowing",
         "exp_alerts": [{"exp_labels": {**dead, **warning}}]},
        {"eval_time": "20m", "alertname": "TickStockDeadLettersGrowing", "exp_alerts": []},
        {"eval_time": "5m", "alertname": "TickStockConsumerLagGrowing", "exp_alerts": []},
        {"eval_time": "15m", "alertname": "TickStockConsumerLagGrowing",
         "exp_alerts": [{"exp_labels": {**group, **warning}}]},
        {"eval_time": "1m", "alertname": "TickStockLiveFeedBehind", "exp_alerts": []},
        {"eval_time": "3m", "alertname": "TickStockLiveFeedBehind",
         "exp_alerts": [{"exp_labels": warning}]},
        {"eval_time": "3m", "alertname": "TickStockLiveBarsStale",
         "exp_alerts": [{"exp_labels": warning}]},
    ])


def test_rules_and_dashboard_name_only_exported_metrics() -> None:
    exported = _exported_names()
    in_rules = set().union(*(referenced_names(str(rule["expr"])) for rule in alert_rules()))
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    in_dashboard = set().union(*(referenced_names(e) for e in exprs))
    assert "tickstock_role_instances" in in_rules and "tickstock_run_progress_ratio" in in_dashboard
    assert in_rules - exported == set(), "alert rules name metrics nobody exports"
    assert in_dashboard - exported == set(), "the dashboard names metrics nobody exports"


def test_dashboard_is_grafana_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 30
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24
        if panel["type"] != "row":
            assert panel["targets"] and all(t["expr"] for t in panel["targets"])


# -- the role-down rule against a real scrape ----------------------------------------------------
_BEATING = textwrap.dedent("""
    import sys, time
    from tickstock.bus.connection import connect
    from tickstock.bus.heartbeat import HeartbeatThread
    from tickstock.core.clock import LiveClock
    HeartbeatThread(connect(sys.argv[1]), role="worker", instance=sys.argv[2],
                    clock=LiveClock(), interval_s=0.2, ttl_s=1.0).start()
    print("beating", flush=True)
    time.sleep(600)
""")


@pytest.fixture
def exporter(db_dsn: str, redis_url: str) -> Iterator[tuple[str, Settings]]:
    settings = load_settings({"TICKSTOCK_HEARTBEAT_TTL_S": "1.0",
                              "TICKSTOCK_HEARTBEAT_INTERVAL_S": "0.2",
                              "TICKSTOCK_ROLES": "worker"})
    registry = CollectorRegistry()
    exported = metrics.register_collectors(settings, "scheduler", "scheduler-test",
                                           database_url=db_dsn, redis_url=redis_url,
                                           registry=registry)
    server = metrics.serve_metrics(0, "127.0.0.1", registry)
    try:
        yield f"http://127.0.0.1:{server.port}/metrics", settings
    finally:
        server.close()
        exported.close()


def _wait_for(url: str, want: float, timeout_s: float = 10.0) -> list[Sample]:
    deadline = time.monotonic() + timeout_s
    while True:
        samples = scrape(url)
        if value(samples, "tickstock_role_instances", role="worker") == want:
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"worker instances never became {want}")
        time.sleep(0.2)


def _series(samples: list[Sample], names_: set[str]) -> dict[str, dict[str, str]]:
    return {
        s.name + json.dumps(s.labels, sort_keys=True): {"name": s.name, **s.labels}
        for s in samples if s.name in names_
    }


def _promtool_role_down(alive: list[Sample], dead: list[Sample], tmp: Path) -> None:
    """Feed the two scrapes as series (alive 0..45 s, dead from 60 s) and ask promtool."""
    wanted = {"tickstock_role_instances", "tickstock_role_expected_instances"}
    target = {"instance": "127.0.0.1:9102", "job": "tickstock-scheduler"}
    series = []
    for key, labels in _series(alive + dead, wanted).items():
        name = labels.pop("name")
        before = next((s.value for s in alive if s.name + json.dumps(s.labels, sort_keys=True)
                       == key), None)
        after = next((s.value for s in dead if s.name + json.dumps(s.labels, sort_keys=True)
                      == key), None)
        points = [("_" if before is None else f"{before:g}")] * 4 + \
                 [("_" if after is None else f"{after:g}")] * 10
        selector = ",".join(f'{k}="{v}"' for k, v in sorted({**labels, **target}.items()))
        series.append({"series": f"{name}{{{selector}}}", "values": " ".join(points)})
    assert PROMTOOL is not None
    promtool_rules_test(PROMTOOL, tmp, series, [
        {"eval_time": "45s", "alertname": "TickStockRoleDown", "exp_alerts": []},
        {"eval_time": "2m30s", "alertname": "TickStockRoleDown",
         "exp_alerts": [{"exp_labels": {"role": "worker", "severity": "critical"}}]},
    ])


def _eval_role_down(samples: list[Sample]) -> dict[str, bool]:
    """``max without (instance, job) (tickstock_role_instances) == 0`` per role."""
    by_role: dict[str, float] = {}
    for s in samples:
        if s.name == "tickstock_role_instances":
            role = s.labels["role"]
            by_role[role] = max(by_role.get(role, s.value), s.value)
    return {role: v == 0 for role, v in by_role.items()}


def test_killing_a_role_fires_role_down(
    exporter: tuple[str, Settings], redis_url: str, tmp_path: Path
) -> None:
    url, _settings = exporter
    assert next(r for r in alert_rules() if r["alert"] == "TickStockRoleDown")["expr"] == ROLE_DOWN
    child = subprocess.Popen([sys.executable, "-c", _BEATING, redis_url, "worker-doomed"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "beating"
        alive = _wait_for(url, 1.0)
        assert value(alive, "tickstock_heartbeat_age_seconds", role="worker",
                     process="worker-doomed") is not None
        assert _eval_role_down(alive)["worker"] is False
        child.send_signal(signal.SIGKILL)  # no clean stop: the key must expire by itself
        child.wait(10)
        dead = _wait_for(url, 0.0)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        assert child.stdout is not None
        child.stdout.close()
    client = redis.Redis.from_url(redis_url)
    assert client.exists(names.heartbeat_key("worker", "worker-doomed")) == 0
    client.close()
    assert value(dead, "tickstock_heartbeat_age_seconds", role="worker") is None
    assert _eval_role_down(dead)["worker"] is True
    if PROMTOOL:
        _promtool_role_down(alive, dead, tmp_path)
