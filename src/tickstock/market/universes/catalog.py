"""The universe catalogue (files on disk) and the operations that store universes.

Built-in lists ship with the package (``data/``: NASDAQ-100, Dow 30, ETFs; each a snapshot,
replace the file to update it). More files — ``sp500_constituents.csv`` from
``../shared/data/universes/`` or any user list — are found in the directories the catalogue
is given, which win over the built-in ones. Importing a list whose members name sectors stores one
more universe per sector, named ``<list>:<sector-slug>`` (``sp500:information-technology``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import psycopg

from tickstock.core.errors import DataValidationError, NotFoundError
from tickstock.market.universes.files import (
    TICKER,
    UniverseDefinition,
    check_name,
    name_from_path,
    read_universe_file,
)
from tickstock.store import universes as store
from tickstock.store.universes import SaveResult, UniverseKind

BUILTIN_DIR = Path(__file__).parent / "data"
#: Kind and asset type of the well-known universes; any other file is a custom list.
WELL_KNOWN: dict[str, tuple[UniverseKind, str, str]] = {
    "sp500": ("index", "stock", "S&P 500 constituents"),
    "nasdaq100": ("index", "stock", "NASDAQ-100 constituents"),
    "dow30": ("index", "stock", "Dow Jones Industrial Average (30)"),
    "etfs": ("etf", "etf", "Widely traded ETFs: broad market, bonds, commodities, sectors"),
}
_SUFFIXES = (".csv", ".csv.gz", ".txt")

Operation = Literal["union", "intersection", "difference"]


class UniverseCatalog:
    """Universe files by name, searched in ``directories`` then the built-in lists."""

    def __init__(self, directories: Sequence[Path] = ()) -> None:
        self.directories = (*(d for d in directories if d.is_dir()), BUILTIN_DIR)

    def files(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for directory in reversed(self.directories):  # earlier directories win
            for path in sorted(directory.iterdir()):
                if path.name.endswith(_SUFFIXES):
                    found[name_from_path(path)] = path
        return dict(sorted(found.items()))

    def names(self) -> list[str]:
        return list(self.files())

    def load(self, name: str) -> UniverseDefinition:
        """The definition of ``name``; NotFoundError naming what the catalogue has."""
        path = self.files().get(name)
        if path is None:
            raise NotFoundError(f"no universe file for {name!r} in "
                                f"{', '.join(map(str, self.directories))} "
                                f"(available: {', '.join(self.names())})")
        return definition_from_file(path, name=name)


def definition_from_file(path: Path, *, name: str | None = None) -> UniverseDefinition:
    universe = name or name_from_path(path)
    kind, asset_type, description = WELL_KNOWN.get(
        universe, ("custom", "stock", f"{universe} (from {path.name})"))
    return read_universe_file(path, name=universe, kind=kind, asset_type=asset_type,
                              description=description)


def sector_slug(sector: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", sector.lower()).strip("-")


def sector_universes(definition: UniverseDefinition) -> list[UniverseDefinition]:
    """One ``sector`` universe per sector named in the members (none for lists without
    sectors, such as ETFs)."""
    by_sector: dict[str, list[str]] = {}
    for member in definition.members:
        if member.sector:
            by_sector.setdefault(member.sector, []).append(member.symbol)
    return [UniverseDefinition(f"{definition.name}:{sector_slug(sector)}", "sector",
                               f"{sector} members of {definition.name}",
                               tuple(m for m in definition.members if m.sector == sector))
            for sector in sorted(by_sector)]


def import_universe(conn: psycopg.Connection[Any], definition: UniverseDefinition, *,
                    sectors: bool = True) -> dict[str, SaveResult]:
    """Upsert the members' reference data and store the universe (and its sector universes)
    in one transaction. Re-importing the same file changes nothing."""
    results: dict[str, SaveResult] = {}
    with conn.transaction():
        store.upsert_symbols(conn, definition.members)
        for d in [definition, *(sector_universes(definition) if sectors else [])]:
            results[d.name] = store.save_universe(conn, d.name, kind=d.kind,
                                                  description=d.description, symbols=d.symbols)
    return results


def save_custom(conn: psycopg.Connection[Any], name: str, symbols: Iterable[str], *,
                description: str | None = None) -> SaveResult:
    """Create or replace a user's list ``name`` with ``symbols`` (bare symbol rows are added
    for symbols not known yet)."""
    check_name(name)
    clean = sorted({s.strip().upper() for s in symbols if s.strip()})
    bad = [s for s in clean if not TICKER.match(s)]
    if bad:
        raise DataValidationError(f"not tickers: {', '.join(bad[:10])}")
    if not clean:
        raise DataValidationError(f"universe {name}: no symbols given")
    with conn.transaction():
        store.ensure_symbols(conn, clean)
        return store.save_universe(conn, name, kind="custom",
                                   description=description or f"custom list {name}",
                                   symbols=clean)


def combine(conn: psycopg.Connection[Any], name: str, operation: Operation,
            sources: Sequence[str], *, description: str | None = None) -> SaveResult:
    """Store ``name`` as the union / intersection / difference (first minus the others) of
    the stored universes ``sources``; NotFoundError names a missing source."""
    check_name(name)
    if len(sources) < 2:
        raise DataValidationError(f"{operation} needs at least two universes, got {list(sources)}")
    if name in sources:
        raise DataValidationError(f"universe {name} cannot be built from itself")
    sets = [set(store.members(conn, source)) for source in sources]
    result = set(sets[0])
    for other in sets[1:]:
        if operation == "union":
            result |= other
        elif operation == "intersection":
            result &= other
        else:
            result -= other
    return store.save_universe(
        conn, name, kind="derived", symbols=result,
        description=description or f"{operation} of {', '.join(sources)}")
