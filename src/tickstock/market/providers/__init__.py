"""Market-data providers behind one interface (``base.Provider``), and the factory.

The factory takes plain arguments (the ops layer passes ``Settings`` fields), so ``market``
never imports ``ops``.
"""

from __future__ import annotations

from pathlib import Path

from tickstock.core.errors import ConfigurationError
from tickstock.market.calendar import MarketCalendar
from tickstock.market.providers.base import (
    Capabilities,
    CorporateAction,
    FetchResult,
    Provider,
    SymbolInfo,
)

__all__ = [
    "Capabilities",
    "CorporateAction",
    "FetchResult",
    "Provider",
    "SymbolInfo",
    "create_provider",
]


def create_provider(
    name: str,
    calendar: MarketCalendar,
    *,
    massive_api_key: str | None = None,
    massive_base_url: str = "https://api.massive.com",
    files_dir: Path | None = None,
    synthetic_seed: int = 42,
    synthetic_symbols: frozenset[str] | None = None,
) -> Provider:
    """The provider called ``name`` ("massive", "files" or "synthetic"), ready to use.

    Raises ConfigurationError naming the missing setting.
    """
    if name == "massive":
        if not massive_api_key:
            raise ConfigurationError("MASSIVE_API_KEY is required for the massive provider")
        from tickstock.market.providers.massive import MassiveConfig, MassiveProvider

        return MassiveProvider(calendar, MassiveConfig(massive_api_key, massive_base_url))
    if name == "files":
        if files_dir is None:
            raise ConfigurationError("TICKSTOCK_FILES_DIR is required for the files provider")
        from tickstock.market.providers.files import FilesConfig, FilesProvider

        return FilesProvider(calendar, FilesConfig(files_dir))
    if name == "synthetic":
        from tickstock.market.providers.synthetic import SyntheticConfig, SyntheticProvider

        return SyntheticProvider(calendar, SyntheticConfig(synthetic_seed, synthetic_symbols))
    raise ConfigurationError(
        f"TICKSTOCK_PROVIDER={name!r} is not a provider (massive, files, synthetic)")
