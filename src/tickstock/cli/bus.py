"""``tickstock bus``: look at the bus — tail live events (typed, like ``redis-cli SUBSCRIBE``
but decoded and checked against the contract), list dead letters, show the streams."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import redis
from rich.console import Console
from rich.markup import escape

from tickstock.cli.context import redis_url
from tickstock.contracts.envelope import Envelope
from tickstock.core.errors import InfrastructureError

#: Colour of an event type by how it ends; everything else is plain.
_STYLES = {"failed": "red", "error": "red", "rejected": "red", "cancelled": "yellow",
           "completed": "green", "accepted": "green", "detected": "cyan", "alert": "magenta"}


@contextmanager
def redis_client(name: str = "cli") -> Iterator[redis.Redis]:
    """A bus client for the configured Redis; an unreachable Redis is an error naming the
    setting, not a traceback."""
    from tickstock.bus.connection import connect

    url = redis_url(start=False)
    client = connect(url, name=name)
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        client.close()
        raise InfrastructureError(
            f"Redis at {_safe(url)} is unreachable ({exc}); start it with `tickstock infra "
            "start` or point TICKSTOCK_REDIS_URL at a running server") from None
    try:
        yield client
    finally:
        client.close()


def _safe(url: str) -> str:
    """``url`` without its password."""
    head, sep, tail = url.rpartition("@")
    return f"{head.split('//')[0]}//***@{tail}" if sep else url


def describe(envelope: Envelope) -> str:
    """One line of rich markup: time, type, source, correlation and the payload's fields."""
    fields = envelope.data.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    if "job_id" in fields and fields["job_id"] == envelope.correlation_id:
        del fields["job_id"]  # shown once, as the correlation id
    parts = " ".join(f"[dim]{escape(k)}=[/]{escape(_short(v))}" for k, v in fields.items())
    style = next((s for word, s in _STYLES.items() if envelope.type.endswith(word)), "bold")
    corr = f" [blue]{escape(envelope.correlation_id)}[/]" if envelope.correlation_id else ""
    return (f"[dim]{envelope.ts.strftime('%H:%M:%S.%f')[:-3]}[/] [{style}]{envelope.type}[/]"
            f" [dim]{escape(envelope.source)}[/]{corr} {parts}").rstrip()


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def console() -> Console:
    """Colour on a terminal, plain text in pipes and tests; never wrapped mid-event."""
    return Console(highlight=False, soft_wrap=True)


@click.group()
def bus() -> None:
    """Inspect the bus: live events, dead letters, streams."""


@bus.command()
@click.option("--type", "types", multiple=True, metavar="PREFIX",
              help="Only events whose type starts with PREFIX (repeatable), e.g. job. or run.")
@click.option("--correlation", "--job", "correlation", metavar="ID",
              help="Only events of this job or run.")
@click.option("--last", default=0, show_default=True, type=click.IntRange(0, 10_000),
              help="First show the last N events of the stream.")
@click.option("--count", default=0, type=click.IntRange(0), help="Exit after N events (0: never).")
@click.option("--timeout", default=0.0, type=click.FloatRange(0),
              help="Exit after this many seconds (0: never).")
@click.option("--json", "as_json", is_flag=True, help="Print each envelope as one JSON line.")
def tail(*, types: tuple[str, ...], correlation: str | None, last: int, count: int, timeout: float,
         as_json: bool) -> None:
    """Print live events as they are published (Ctrl-C stops)."""
    from tickstock.bus.events import EventReader
    from tickstock.core.clock import LiveClock

    out = console()
    stop = threading.Event()
    timer = threading.Timer(timeout, stop.set) if timeout else None
    shown = 0
    with redis_client("cli-bus-tail") as client:
        reader = EventReader(client, clock=LiveClock())
        start = reader.latest_id()
        backlog = reader.recent(last) if last else []
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            for _, envelope in itertools.chain(backlog, reader.follow(stop, after=start,
                                                                       block_ms=200)):
                if types and not envelope.type.startswith(types):
                    continue
                if correlation and envelope.correlation_id != correlation:
                    continue
                if as_json:
                    click.echo(envelope.encode().decode())
                else:
                    out.print(describe(envelope))
                shown += 1
                if count and shown >= count:
                    break
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()


@bus.command(name="dead-letters")
@click.option("--count", default=20, show_default=True, type=click.IntRange(1, 5000),
              help="How many of the newest dead letters.")
@click.option("--stream", help="Only those that came from this stream or channel.")
@click.option("--full", is_flag=True, help="Show each original entry in full.")
@click.option("--json", "as_json", is_flag=True, help="Print each dead letter as one JSON line.")
def dead_letters(count: int, stream: str | None, full: bool, as_json: bool) -> None:
    """List messages that could not be processed, newest first, with the reason."""
    from tickstock.bus import deadletter

    out = console()
    with redis_client() as client:
        letters = deadletter.read(client, count=count)
    letters = [(i, d) for i, d in letters if stream is None or d.stream == stream]
    if not letters and not as_json:
        click.echo("no dead letters")
    for entry_id, letter in letters:
        if as_json:
            click.echo(json.dumps({"id": entry_id, **letter.model_dump(mode="json")}))
            continue
        kind = f" {letter.message_type}" if letter.message_type else ""
        tries = f" after {letter.deliveries} deliveries" if letter.deliveries > 1 else ""
        out.print(f"[dim]{letter.ts.isoformat(timespec='seconds')}[/] [red]{escape(letter.stream)}"
                  f"[/] {letter.entry_id}{escape(kind)}{tries}\n  reason: {escape(letter.reason)}")
        original = letter.original if full else _short(letter.original, 200)
        cut = f" (cut, {letter.original_bytes} bytes)" if letter.truncated else ""
        out.print(f"  original{cut}: {escape(original)}")


@bus.command()
def streams() -> None:
    """Length, consumer groups, pending and waiting entries of every stream."""
    from tickstock.bus.inspection import stream_info
    from tickstock.contracts import names

    with redis_client() as client:
        infos = [stream_info(client, s) for s in (*names.DURABLE_STREAMS, names.EVENTS_STREAM,
                                                  names.DEAD_LETTER_STREAM)]
    for info in infos:
        click.echo(f"{info.stream:32} {info.length:>8} entries")
        for g in info.groups:
            lag = "?" if g.lag is None else str(g.lag)
            click.echo(f"  group {g.name:30} consumers {g.consumers:>3}  pending {g.pending:>6}  "
                       f"waiting {lag:>6}")

