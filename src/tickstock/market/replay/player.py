"""Timing of a replay: which frame is published when.

Replay time runs ``speed`` times faster than the wall clock: a frame is published when its
minute has ended, so frames follow each other every ``60 / speed`` seconds. Time between
sessions (nights, weekends, holidays) and minutes without any bar take no wall time. Speed 0
means "as fast as the clients take it": the next frame goes out once every client has been
handed the previous one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from tickstock.market.replay.frames import MinuteFrame
from tickstock.market.replay.server import ReplayServer

logger = logging.getLogger(__name__)


class Player:
    """Publishes ``frames`` on ``server`` at ``speed``; ``run`` returns the number played."""

    def __init__(
        self,
        server: ReplayServer,
        frames: Iterable[MinuteFrame],
        *,
        speed: float = 60.0,
        wait_for_subscriber: bool = True,
        on_frame: Callable[[MinuteFrame], None] | None = None,
    ) -> None:
        if speed < 0:
            raise ValueError(f"replay speed must be >= 0, got {speed}")
        self.server = server
        self.frames = frames
        self.speed = speed
        self.wait_for_subscriber = wait_for_subscriber
        self.on_frame = on_frame

    async def run(self) -> int:
        if self.wait_for_subscriber:
            while True:
                try:
                    await self.server.wait_subscribed(timeout_s=3600)
                    break
                except TimeoutError:
                    continue
        step = 60.0 / self.speed if self.speed else 0.0
        next_at = time.monotonic() + step
        played = 0
        for frame in self.frames:
            if step:
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                next_at += step
            await self.server.publish(frame)
            if not step:
                await self.server.drain(timeout_s=3600)
            played += 1
            if self.on_frame is not None:
                self.on_frame(frame)
        await self.server.drain(timeout_s=60)
        logger.info("replay finished", extra={"frames": played})
        return played
