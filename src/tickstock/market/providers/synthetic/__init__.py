"""Deterministic synthetic market (the default provider when no provider key is set)."""

from tickstock.market.providers.synthetic.config import SyntheticConfig
from tickstock.market.providers.synthetic.provider import CAPABILITIES, SyntheticProvider

__all__ = ["CAPABILITIES", "SyntheticConfig", "SyntheticProvider"]
