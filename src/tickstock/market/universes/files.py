"""Universe files: a symbol list with optional reference data, as CSV or plain text.

CSV (plain or gzip), recognised by a header naming a symbol column, in any column order,
case-insensitively (the layout of ``sp500_constituents.csv``)::

    Symbol|Ticker, [Security|Name|Company], [GICS Sector|Sector], [GICS Sub-Industry|Industry],
    [CIK], ...  (other columns are ignored)

Plain text: one symbol per line (or several separated by spaces/commas); ``#`` starts a
comment. Symbols are upper-cased; a repeated symbol counts once. A symbol that is not a ticker
(``A-Z 0-9 . -``, 1-24 characters) or a file without any symbol is refused with the line at
fault: a universe is imported whole or not at all.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from tickstock.core.errors import DataValidationError
from tickstock.market.providers.files.data import read_bytes
from tickstock.store.universes import SymbolRow, UniverseKind

TICKER = re.compile(r"^[A-Z0-9.\-]{1,24}$")
UNIVERSE_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")

_COLUMNS = {
    "symbol": ("symbol", "ticker"),
    "name": ("security", "name", "company", "company name"),
    "sector": ("gics sector", "sector"),
    "sub_industry": ("gics sub-industry", "sub-industry", "industry"),
    "cik": ("cik",),
}


@dataclass(frozen=True)
class UniverseDefinition:
    """A universe as read from a file: what ``import_universe`` stores."""

    name: str
    kind: UniverseKind
    description: str
    members: tuple[SymbolRow, ...]

    @property
    def symbols(self) -> list[str]:
        return [m.symbol for m in self.members]


def check_name(name: str) -> str:
    """``name`` if it is a valid universe name, else DataValidationError saying why."""
    if not UNIVERSE_NAME.match(name):
        raise DataValidationError(
            f"universe name {name!r} is not valid: 1-64 characters of letters, digits and _ . : -")
    return name


def name_from_path(path: Path) -> str:
    """``sp500_constituents.csv`` -> ``sp500``; ``tech.txt`` -> ``tech``."""
    stem = path.name.split(".")[0]
    return stem.removesuffix("_constituents").lower()


def read_universe_file(path: Path, *, name: str | None = None, kind: UniverseKind = "custom",
                       asset_type: str = "stock", description: str | None = None
                       ) -> UniverseDefinition:
    """Parse ``path`` into a universe definition (``name`` defaults to the file's name)."""
    if not path.is_file():
        raise DataValidationError(f"universe file {path} does not exist")
    text = read_bytes(path).decode("utf-8-sig", errors="replace")
    universe = check_name(name or name_from_path(path))
    first = text.lstrip().split("\n", 1)[0].lower()
    is_csv = any(alias in first for alias in _COLUMNS["symbol"]) and "," in first
    members = _csv_members(text, path, asset_type) if is_csv else _text_members(
        text, path, asset_type)
    if not members:
        raise DataValidationError(f"universe file {path} lists no symbols")
    return UniverseDefinition(universe, kind, description or f"{universe} (from {path.name})",
                              tuple(members))


def _csv_members(text: str, path: Path, asset_type: str) -> list[SymbolRow]:
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader)]
    index = {key: next((header.index(a) for a in aliases if a in header), None)
             for key, aliases in _COLUMNS.items()}
    if index["symbol"] is None:
        raise DataValidationError(f"{path}: no Symbol/Ticker column in header {header}")
    seen: dict[str, SymbolRow] = {}
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue

        def cell(key: str, row: list[str] = row) -> str | None:
            i = index[key]
            value = row[i].strip() if i is not None and i < len(row) else ""
            return value or None

        symbol = _ticker(cell("symbol") or "", path, line)
        seen.setdefault(symbol, SymbolRow(
            symbol, name=cell("name"), asset_type=asset_type, sector=cell("sector"),
            sub_industry=cell("sub_industry"), cik=cell("cik")))
    return list(seen.values())


def _text_members(text: str, path: Path, asset_type: str) -> list[SymbolRow]:
    seen: dict[str, SymbolRow] = {}
    for line, raw in enumerate(text.splitlines(), start=1):
        for token in re.split(r"[\s,;]+", raw.split("#", 1)[0]):
            if token:
                symbol = _ticker(token, path, line)
                seen.setdefault(symbol, SymbolRow(symbol, asset_type=asset_type))
    return list(seen.values())


def _ticker(raw: str, path: Path, line: int) -> str:
    symbol = raw.strip().upper()
    if not TICKER.match(symbol):
        raise DataValidationError(
            f"{path} line {line}: {raw.strip()!r} is not a ticker (A-Z 0-9 . -, 1-24 characters)")
    return symbol
