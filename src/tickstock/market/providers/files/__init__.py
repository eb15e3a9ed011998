"""CSV files on disk (plain or gzip) as a market-data provider."""

from tickstock.market.providers.files.config import FilesConfig
from tickstock.market.providers.files.provider import CAPABILITIES, FilesProvider

__all__ = ["CAPABILITIES", "FilesConfig", "FilesProvider"]
