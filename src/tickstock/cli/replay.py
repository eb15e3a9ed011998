"""``tickstock replay``: a local stand-in for the provider's live feed.

    tickstock replay --file ../shared/data/intraday/SP500_NOV2019_IDay.csv --speed 60
    tickstock replay --synthetic 500 --speed 10

It serves the Massive WebSocket protocol (and the REST minute aggregates of what it has played)
on one port; point the stream role at it with ``TICKSTOCK_MASSIVE_WS_URL`` and
``TICKSTOCK_MASSIVE_BASE_URL``. Playback starts when the first client subscribes.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tickstock.core.clock import LiveClock
from tickstock.core.errors import ConfigurationError

if TYPE_CHECKING:
    from tickstock.market.replay import MinuteFrame

DEFAULT_PORT = 8765
DEFAULT_KEY = "replay-key"


@click.command()
@click.option("--file", "file_", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Minute bars (CSV, New York times: Date,Open,Close,High,Low,Volume).")
@click.option("--symbol", help="Ticker of the file's bars (default: the file name's first word).")
@click.option("--synthetic", type=click.IntRange(1, 20000), help="Play a synthetic market of N symbols.")
@click.option("--start", "start_day", type=click.DateTime(["%Y-%m-%d"]),
              help="First session of the synthetic market (default: the last complete one).")
@click.option("--days", type=click.IntRange(1, 250), default=1, show_default=True,
              help="Sessions of synthetic market to play.")
@click.option("--seed", type=int, default=42, show_default=True, help="Synthetic market seed.")
@click.option("--speed", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Replay minutes per wall minute; 0 = as fast as the client takes them.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True)
@click.option("--key", default=None, help="API key clients must send (default: MASSIVE_API_KEY "
              f"or {DEFAULT_KEY!r}).")
@click.option("--exit-when-done", is_flag=True, help="Stop once everything is played.")
def replay(*, file_: Path | None, symbol: str | None, synthetic: int | None,
           start_day: datetime | None,
           days: int, seed: int, speed: float, host: str, port: int, key: str | None,
           exit_when_done: bool) -> None:
    """Serve a provider-protocol WebSocket replay of recorded or synthetic minute bars."""
    if (file_ is None) == (synthetic is None):
        raise click.UsageError("give exactly one of --file or --synthetic")
    from tickstock.cli.context import settings

    configured = settings()
    api_key = key or (configured.massive_api_key.get_secret_value()
                      if configured.massive_api_key is not None else DEFAULT_KEY)
    if file_ is not None:
        frames = _file_frames(file_, symbol or file_.name.split("_")[0].split(".")[0].upper())
    else:
        first = start_day.date() if start_day is not None else None
        frames = _synthetic_frames(synthetic or 0, first, days, seed)
    asyncio.run(_serve(frames, api_key=api_key, host=host, port=port, speed=speed,
                       exit_when_done=exit_when_done))


def _file_frames(path: Path, symbol: str) -> Iterable[MinuteFrame]:
    from tickstock.market.replay import frames_from_bars, read_minute_csv

    return frames_from_bars(read_minute_csv(path, symbol))


def _synthetic_frames(count: int, first: date | None, days: int, seed: int) -> Iterable[MinuteFrame]:
    from tickstock.market.calendar import nyse
    from tickstock.market.replay import SyntheticMinutes, synthetic_symbols

    calendar = nyse()
    if first is None:
        first = calendar.last_complete_session(LiveClock()).day
    sessions = [s for s in calendar.sessions(first, date(first.year + 2, 12, 31))][:days]
    if not sessions:
        raise ConfigurationError(f"no NYSE session on or after {first}")
    market = SyntheticMinutes(synthetic_symbols(count), seed=seed)
    return market.sessions((s.open, s.close) for s in sessions)


async def _serve(frames: Iterable[MinuteFrame], *, api_key: str, host: str, port: int, speed: float,
                 exit_when_done: bool) -> None:
    from tickstock.market.replay import Player, ReplayServer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with ReplayServer(api_key, host=host, port=port) as server:
        click.echo(f"replay listening: TICKSTOCK_MASSIVE_WS_URL={server.ws_url} "
                   f"TICKSTOCK_MASSIVE_BASE_URL={server.rest_url} (speed {speed:g}x)")
        click.echo("playback starts when a client subscribes; Ctrl-C stops")
        player = Player(server, frames, speed=speed)
        playing = asyncio.create_task(player.run())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([playing, stopping], return_when=asyncio.FIRST_COMPLETED)
        if playing.done() and not stop.is_set():
            click.echo(f"played {playing.result()} minutes"
                       + ("" if exit_when_done else "; still serving REST and the feed"))
            if not exit_when_done:
                await stop.wait()
        for task in (playing, stopping):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
