"""Settings of the synthetic market."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SyntheticConfig:
    """``seed`` fixes the whole market; ``known_symbols`` (if set) is its symbol list, and
    any other symbol is unknown (NotFoundError), as with a real provider."""

    seed: int = 42
    known_symbols: frozenset[str] | None = None
    #: name / sector / sub-industry by symbol, served as reference data
    reference: dict[str, tuple[str, str, str]] = field(default_factory=dict)
