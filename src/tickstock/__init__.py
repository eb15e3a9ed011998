"""TickStock: stock-market analytics platform (market data, indicators, patterns, live dashboards)."""

__version__ = "0.1.0"
