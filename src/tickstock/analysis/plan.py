"""Resolve a set of specs into what both engines run: dependencies first, each once."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from tickstock.analysis.bars import BASE_COLUMNS
from tickstock.analysis.spec import IndicatorSpec, PatternSpec, Spec
from tickstock.core.errors import ConfigurationError


@dataclass(frozen=True)
class Plan:
    """Indicators in dependency order (those asked for plus those they and the patterns read)."""

    indicators: tuple[IndicatorSpec, ...]
    patterns: tuple[PatternSpec, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """Every indicator output column, in computation order."""
        return tuple(col for spec in self.indicators for col in spec.columns)

    @property
    def warmup(self) -> int:
        """Bars needed before every indicator and pattern of the plan can have a value."""
        needs = [s.warmup for s in self.indicators] + [p.warmup for p in self.patterns]
        return max(needs, default=0)

    @property
    def window(self) -> int:
        """Rows of history a pattern detector reads, the current bar included."""
        return max((max(p.lag, p.span - 1) + 1 for p in self.patterns), default=1)


def _add(spec: IndicatorSpec, ordered: dict[str, IndicatorSpec], visiting: set[str]) -> None:
    if spec.name in ordered:
        return
    if spec.name in visiting:
        raise ConfigurationError(f"indicator {spec.name!r} depends on itself")
    visiting.add(spec.name)
    for dep in spec.depends:
        _add(dep, ordered, visiting)
    visiting.discard(spec.name)
    ordered[spec.name] = spec


@lru_cache(maxsize=64)
def _plan(specs: tuple[Spec, ...]) -> Plan:
    ordered: dict[str, IndicatorSpec] = {}
    patterns: dict[str, PatternSpec] = {}
    for spec in specs:
        if isinstance(spec, IndicatorSpec):
            _add(spec, ordered, set())
        else:
            for dep in spec.depends:
                _add(dep, ordered, set())
            patterns.setdefault(spec.name, spec)
    available = set(BASE_COLUMNS)
    for ind in ordered.values():
        missing = [name for name in ind.inputs if name not in available]
        if missing:
            raise ConfigurationError(f"indicator {ind.name!r} reads unknown columns {missing}")
        available.update(ind.columns)
    for pat in patterns.values():
        missing = [name for name in pat.requires if name not in available]
        if missing:
            raise ConfigurationError(f"pattern {pat.name!r} reads unknown columns {missing}")
    return Plan(tuple(ordered.values()), tuple(patterns.values()))


def plan(specs: Iterable[Spec]) -> Plan:
    """The resolved plan of ``specs`` (cached: specs are immutable)."""
    return _plan(tuple(specs))
