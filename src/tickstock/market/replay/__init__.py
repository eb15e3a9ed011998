"""Replay: a local stand-in for the provider's live feed, for tests, demos and benchmarks.

``ReplayServer`` speaks the Massive WebSocket protocol (and the REST aggregates endpoint for the
minutes it has played); ``Player`` publishes minute frames at a speed; ``frames`` reads a
recorded minute file or makes up a synthetic market for any number of symbols.
"""

from tickstock.market.replay.frames import (
    MinuteFrame,
    ReplayBar,
    SyntheticMinutes,
    frames_from_bars,
    read_minute_csv,
    synthetic_symbols,
)
from tickstock.market.replay.player import Player
from tickstock.market.replay.server import ReplayServer

__all__ = [
    "MinuteFrame",
    "Player",
    "ReplayBar",
    "ReplayServer",
    "SyntheticMinutes",
    "frames_from_bars",
    "read_minute_csv",
    "synthetic_symbols",
]
