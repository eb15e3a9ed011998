"""The demo market: a synthetic replay served in-process, so a new install shows a live market.

With no provider key there is no real feed to connect to. The stream role then starts a
``ReplayServer`` on a free local port, plays a synthetic market for its symbols at a demo
speed (``speed`` replay minutes per wall minute) and connects to it like to the real feed —
the same client, the same repairs (the server answers REST for what it has played).

What it plays: the minutes of the last ``sessions`` complete sessions, oldest first, after
``after`` (the newest minute already stored, so a restarted role continues instead of
replaying what the dashboard has already shown). Once they are played the feed stays
connected and quiet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime

from tickstock.market.calendar import Session
from tickstock.market.replay.frames import MinuteFrame, SyntheticMinutes
from tickstock.market.replay.player import Player
from tickstock.market.replay.server import ReplayServer

logger = logging.getLogger(__name__)

DEMO_KEY = "demo-replay-key"
DEMO_SPEED = 20.0  # a new minute every 3 seconds: visibly live, easy to follow


class DemoMarket:
    """Serves and plays the demo market until ``stop``; ``ws_url``/``rest_url`` once started."""

    def __init__(self, symbols: Sequence[str], sessions: Sequence[Session], *,
                 after: datetime | None = None, speed: float = DEMO_SPEED, seed: int = 42,
                 closes: Mapping[str, float] | None = None) -> None:
        self.server = ReplayServer(DEMO_KEY)
        self.market = SyntheticMinutes(symbols, seed=seed, closes=closes)
        self.sessions = tuple(sessions)
        self.after = after
        self.speed = speed
        self._playing: asyncio.Task[int] | None = None

    @property
    def api_key(self) -> str:
        return self.server.api_key

    @property
    def ws_url(self) -> str:
        return self.server.ws_url

    @property
    def rest_url(self) -> str:
        return self.server.rest_url

    def frames(self) -> Iterator[MinuteFrame]:
        """The demo's minutes after ``after`` (earlier ones are generated, to keep the random
        walk the same, but not played)."""
        for frame in self.market.sessions((s.open, s.close) for s in self.sessions):
            if self.after is None or frame.start > self.after:
                yield frame

    async def start(self) -> None:
        await self.server.start()
        player = Player(self.server, self.frames(), speed=self.speed)
        self._playing = asyncio.create_task(player.run(), name="demo-market")
        logger.info("demo market serving", extra={
            "url": self.ws_url, "symbols": len(self.market.symbols), "speed": self.speed,
            "first_session": str(self.sessions[0].day) if self.sessions else None})

    async def stop(self) -> None:
        if self._playing is not None:
            self._playing.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await self._playing
        await self.server.stop()
