"""Settings of the files provider."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class FilesConfig:
    """``directory`` holds one file per symbol: ``<SYMBOL>.csv.gz`` or ``<SYMBOL>.csv``."""

    directory: Path
