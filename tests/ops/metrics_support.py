"""Helpers of the ops metrics/alerts tests: scrape an endpoint, read samples, list metric names."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

import tickstock

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "ops" / "prometheus" / "alerts.yml"
SCRAPE_CONFIG = ROOT / "ops" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "ops" / "grafana" / "tickstock.json"
PROMTOOL = shutil.which("promtool")  # Debian package ``prometheus``
ROLE_DOWN = "max without (instance, job) (tickstock_role_instances) == 0"
# Names Prometheus itself or prometheus_client's default collectors provide.
NON_TICKSTOCK = {"up"}
_NAME = re.compile(r"\b(tickstock_[a-z0-9_]+|process_[a-z0-9_]+|python_[a-z0-9_]+)\b")


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def scrape(url: str) -> list[Sample]:
    """Every sample of the text exposition at ``url``."""
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return [
        Sample(s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    ]


def value(samples: Iterable[Sample], name: str, **labels: str) -> float | None:
    """The value of the one sample ``name{labels...}`` (other labels ignored), None if absent."""
    found = [s.value for s in samples
             if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    if len(found) > 1:
        raise AssertionError(f"{name}{labels} matches {len(found)} samples")
    return found[0] if found else None


def import_metric_modules() -> list[str]:
    """Import every ``tickstock.**.metrics`` module (they register in the default registry)."""
    imported = []
    for info in pkgutil.walk_packages(tickstock.__path__, "tickstock."):
        if info.name.rsplit(".", 1)[-1] == "metrics":
            importlib.import_module(info.name)
            imported.append(info.name)
    return imported


def sample_names(families: Iterable[Metric]) -> set[str]:
    """The sample names a family exposes (``_total``, ``_bucket``, ... by type)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("_sum", "_count", "_created"),
        "info": ("_info",),
        "gauge": ("",),
    }
    names: set[str] = set()
    for family in families:
        for suffix in suffixes.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


def registry_names(*registries: CollectorRegistry) -> set[str]:
    names: set[str] = set()
    for registry in registries:
        names |= sample_names(registry.collect())
    return names


def referenced_names(text: str) -> set[str]:
    """Metric names a PromQL text mentions (``tickstock_*``, ``process_*``, ``python_*``)."""
    return set(_NAME.findall(text))


def promtool_rules_test(promtool: str, tmp: Path, input_series: list[dict[str, str]],
                        alert_tests: list[dict[str, object]], interval: str = "15s") -> None:
    """``promtool test rules`` of ``ops/prometheus/alerts.yml`` against ``input_series``.

    Annotations are templated prose and are dropped: the tests are about each rule's
    expression, ``for`` and labels.
    """
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp / "rules.json").write_text(json.dumps(rules))
    (tmp / "test.json").write_text(json.dumps({
        "rule_files": [str(tmp / "rules.json")],
        "evaluation_interval": interval,
        "tests": [{"interval": interval, "input_series": input_series,
                   "alert_rule_test": alert_tests}],
    }))
    done = subprocess.run([promtool, "test", "rules", str(tmp / "test.json")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def series_selector(name: str, labels: dict[str, str]) -> str:
    """``name{k="v",...}`` with the labels sorted, as promtool's input series want it."""
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


LabelSet = tuple[tuple[str, str], ...]


def max_without_target(scrapes: Iterable[list[Sample]], name: str) -> dict[LabelSet, float]:
    """``max without (instance, job) (name)`` over several targets' scrapes: each target's
    samples lose nothing but the target labels, which the scrapes never carry."""
    found: dict[LabelSet, float] = {}
    for samples in scrapes:
        for s in samples:
            if s.name == name:
                key = tuple(sorted(s.labels.items()))
                found[key] = max(found.get(key, s.value), s.value)
    return found


def alert_rules() -> list[dict[str, object]]:
    """Every rule of ``ops/prometheus/alerts.yml``, in file order."""
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]
