"""Universes: named symbol sets from files (S&P 500, NASDAQ-100, Dow 30, ETFs, sectors, user
lists), stored with their members' reference data; union / intersection / difference."""

from tickstock.market.universes.catalog import (
    BUILTIN_DIR,
    UniverseCatalog,
    combine,
    definition_from_file,
    import_universe,
    save_custom,
    sector_universes,
)
from tickstock.market.universes.files import UniverseDefinition, read_universe_file

__all__ = [
    "BUILTIN_DIR",
    "UniverseCatalog",
    "UniverseDefinition",
    "combine",
    "definition_from_file",
    "import_universe",
    "read_universe_file",
    "save_custom",
    "sector_universes",
]
