"""Massive (formerly Polygon.io) REST, through the official ``massive`` client."""

from tickstock.market.providers.massive.config import MassiveConfig
from tickstock.market.providers.massive.provider import CAPABILITIES, MassiveProvider

__all__ = ["CAPABILITIES", "MassiveConfig", "MassiveProvider"]
