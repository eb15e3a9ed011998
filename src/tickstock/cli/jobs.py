"""``tickstock jobs``: submit data-load jobs, list and show them, cancel them, watch one live.

A job is queued on the jobs stream (``submit``) and has no database row until a worker starts
it; ``list`` and ``show`` therefore read PostgreSQL (the source of truth) and the stream's
not-yet-delivered entries ("queued"). Reading and watching live in ``jobs_view``.
"""

from __future__ import annotations

import getpass
import json
import threading
from datetime import UTC, datetime, time, timedelta
from typing import Any

import click
from pydantic import ValidationError

from tickstock.cli.bus import redis_client
from tickstock.cli.jobs_view import find_queued, job_store, queued_jobs, watch_job
from tickstock.contracts import events as ev
from tickstock.contracts import jobs as jb
from tickstock.core.errors import NotFoundError
from tickstock.store.jobs import JobRecord

#: CLI name of each job kind -> its contract model.
KINDS: dict[str, type[jb.Job]] = {
    "historical-load": jb.HistoricalLoad,
    "universe-seed": jb.UniverseSeed,
    "multi-timeframe-load": jb.MultiTimeframeLoad,
    "file-import": jb.FileImport,
}
#: Payload field -> the option that sets it, so a validation error names what to fix.
_OPTIONS = {"symbols": "--symbols", "universe": "--universe", "timeframes": "--timeframes",
            "start": "--start", "end": "--end", "provider": "--provider", "path": "--path",
            "format": "--format", "symbol": "--symbol", "timeframe": "--timeframe"}
_DATE = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"])


@click.group()
def jobs() -> None:
    """Submit, list, show, cancel and watch data-load jobs."""


# -- submit --------------------------------------------------------------------------------------
@jobs.command()
@click.argument("kind", type=click.Choice(sorted(KINDS)))
@click.option("--symbols", help="Comma-separated symbols, e.g. AAPL,MSFT.")
@click.option("--universe", help="A universe name, e.g. sp500.")
@click.option("--timeframes", help="Comma-separated timeframes (default: day).")
@click.option("--start", type=_DATE, metavar="DATE",
              help="First day loaded, UTC (default: --years before --end).")
@click.option("--end", type=_DATE, metavar="DATE", help="First day NOT loaded, UTC (default: tomorrow).")
@click.option("--years", default=1.0, show_default=True, type=click.FloatRange(0, 50, min_open=True),
              help="Length of the range when --start is not given.")
@click.option("--provider", type=click.Choice(["massive", "files", "synthetic"]),
              help="Market-data provider (default: the configured one).")
@click.option("--path", help="file-import: the CSV (or .csv.gz) file.")
@click.option("--format", "format_", type=click.Choice(["csv", "csv.gz"]),
              help="file-import: file format (default: from the name).")
@click.option("--symbol", help="file-import: symbol of every row (files without that column).")
@click.option("--timeframe", help="file-import: timeframe of every row.")
@click.option("--watch", "then_watch", is_flag=True, help="Then show its progress until it ends.")
def submit(*, kind: str, then_watch: bool, **options: Any) -> None:
    """Queue a job of KIND; prints its id."""
    from tickstock.bus.submit import submit_job
    from tickstock.core.ids import instance_name

    job = build_job(kind, **options)
    with redis_client("cli-jobs") as client:
        envelope = submit_job(client, job, source=instance_name("cli"))
    click.echo(f"submitted {envelope.id} ({job.message_type})")
    if then_watch:
        watch_job(envelope.id, timeout=0.0)


def build_job(kind: str, *, symbols: str | None = None, universe: str | None = None,
              timeframes: str | None = None, start: datetime | None = None,
              end: datetime | None = None, years: float = 1.0, **extra: Any) -> jb.Job:
    """The job the options describe; ``click.UsageError`` naming the option otherwise."""
    model = KINDS[kind]
    params: dict[str, Any] = {"requested_by": requester(), **{
        ("format" if k == "format_" else k): v for k, v in extra.items() if v is not None}}
    if symbols is not None:
        params["symbols"] = [s for s in symbols.split(",") if s.strip()]
    if universe is not None:
        params["universe"] = universe
    if timeframes is not None:
        params["timeframes"] = [t.strip() for t in timeframes.split(",") if t.strip()]
    if model is not jb.FileImport:
        end_at = _utc(end) if end else datetime.combine(
            datetime.now(UTC).date() + timedelta(days=1), time(0), tzinfo=UTC)
        params["end"] = end_at
        params["start"] = _utc(start) if start else end_at - timedelta(days=round(365.25 * years))
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise click.UsageError(_explain(kind, exc)) from None


def requester() -> str:
    """Who asked: ``cli:<OS user>`` (kept with the job as ``requested_by``)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = "unknown"
    return f"cli:{user}"[:128]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _explain(kind: str, exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = str(err["loc"][0]) if err["loc"] else ""
    option = _OPTIONS.get(field, field)
    if err["type"] == "extra_forbidden":
        return f"{option} does not apply to {kind}"
    message = err["msg"].removeprefix("Value error, ")
    return f"{kind}: {option}: {message}" if option else f"{kind}: {message}"


# -- list / show ---------------------------------------------------------------------------------
@jobs.command(name="list")
@click.option("--status", type=click.Choice(["queued", *(s.value for s in ev.JobStatus)]),
              help="Only jobs in this state.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
def list_(status: str | None, limit: int) -> None:
    """Newest jobs first: queued ones (not started by a worker yet), then the recorded ones."""
    rows: list[tuple[str, str, str, str, str, str]] = []
    with job_store() as store:
        if status in (None, "queued"):
            rows += [(e.id, e.type, "queued", "-", e.ts.isoformat(timespec="seconds"),
                      getattr(e.data, "requested_by", None) or "-") for e in queued_jobs(store)]
        if status != "queued":
            records = store.recent(status=ev.JobStatus(status) if status else None, limit=limit)
            rows += [(r.job_id, r.job_type or "?", r.status.value, _progress(r),
                      r.submitted_at.isoformat(timespec="seconds"), r.requested_by or "-")
                     for r in records]
    if not rows:
        click.echo("no jobs")
    for job_id, job_type, state, progress, submitted, who in rows[:limit]:
        click.echo(f"{job_id:36}  {job_type:24}  {state:9}  {progress:18}  {submitted}  {who}")


def _progress(record: JobRecord) -> str:
    failed = f" ({record.failed} failed)" if record.failed else ""
    return f"{record.processed}/{record.total}{failed}"


@jobs.command()
@click.argument("job_id")
@click.option("--symbols", "all_symbols", is_flag=True, help="List every symbol's result.")
def show(job_id: str, all_symbols: bool) -> None:
    """Everything recorded about JOB_ID: state, progress, symbol results, event history."""
    with job_store() as store:
        record = store.get(job_id)
        if record is None:
            _show_queued(job_id)
            return
        results = store.symbol_results(job_id)
        history = store.events(job_id)
    for label, value in _record_lines(record):
        click.echo(f"{label:13} {value}")
    shown = [r for r in results if all_symbols or r["status"] != "ok"]
    click.echo(f"symbols       {sum(r['status'] == 'ok' for r in results)} ok, "
               f"{sum(r['status'] == 'failed' for r in results)} failed")
    for r in shown:
        click.echo(f"  {r['symbol']:10} {r['timeframe'] or '-':6} {r['status']:7} "
                   f"{r['bars']:>7} bars  {r['error'] or ''}".rstrip())
    click.echo("events")
    for e in history:
        click.echo(f"  {e.ts.isoformat(timespec='milliseconds')}  {e.type}")


def _record_lines(r: JobRecord) -> list[tuple[str, str]]:
    def when(value: datetime | None) -> str:
        return value.isoformat(timespec="seconds") if value else "-"

    lines = [("job", r.job_id), ("type", r.job_type or "? (cancelled before it arrived)"),
             ("status", r.status.value + (" (cancel requested)" if r.cancel_requested
                                         and not r.finished else "")),
             ("progress", f"{_progress(r)}, {r.percent:.0f}%"),
             ("requested by", r.requested_by or "-"), ("worker", r.worker or "-"),
             ("attempts", str(r.attempts)), ("submitted", when(r.submitted_at)),
             ("started", when(r.started_at)), ("finished", when(r.finished_at)),
             ("params", _compact(r.params))]
    if r.error:
        lines.append(("error", r.error))
    if r.result:
        lines.append(("result", _compact(r.result)))
    return lines


def _compact(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(", ", ": "), default=str)


def _show_queued(job_id: str) -> None:
    envelope = find_queued(job_id)
    if envelope is None:
        raise NotFoundError(f"no job {job_id}: not in the database and not queued "
                            "(`tickstock jobs list` shows the known ones)")
    click.echo(f"{'job':13} {job_id}\n{'type':13} {envelope.type}\n{'status':13} queued "
               f"(no worker has started it yet)\n{'submitted':13} "
               f"{envelope.ts.isoformat(timespec='seconds')}\n"
               f"{'params':13} {_compact(envelope.data.model_dump(mode='json'))}")


# -- cancel --------------------------------------------------------------------------------------
@jobs.command()
@click.argument("job_id")
@click.option("--wait", "wait_s", default=10.0, show_default=True, type=click.FloatRange(0),
              help="Seconds to wait for a worker's answer (0: do not wait).")
def cancel(job_id: str, wait_s: float) -> None:
    """Ask JOB_ID to stop at its next symbol boundary (a queued job is cancelled on arrival)."""
    from tickstock.bus.events import EventReader
    from tickstock.bus.submit import send_command
    from tickstock.contracts.commands import Cancel
    from tickstock.core.clock import LiveClock
    from tickstock.core.ids import instance_name

    try:
        command = Cancel(job_id=job_id, requested_by=requester())
    except ValidationError:
        raise click.BadParameter(f"{job_id!r} is not a job id", param_hint="JOB_ID") from None
    with redis_client("cli-jobs") as client:
        reader = EventReader(client, clock=LiveClock())
        after = reader.latest_id()
        envelope = send_command(client, command, source=instance_name("cli"),
                                correlation_id=job_id)
        answer = _answer(reader, after, envelope.id, wait_s)
    if answer is None:
        click.echo(f"cancel of {job_id} queued (command {envelope.id}); no worker answered "
                   f"within {wait_s:g}s — a worker carries it out when it runs")
    elif isinstance(answer, ev.CommandRejected):
        raise click.ClickException(f"cancel of {job_id} rejected: {answer.reason}")
    else:
        click.echo(f"cancel of {job_id} accepted: {answer.note or 'ok'}")


def _answer(reader: Any, after: str, command_id: str, wait_s: float
            ) -> ev.CommandAccepted | ev.CommandRejected | None:
    stop = threading.Event()
    timer = threading.Timer(wait_s, stop.set)
    timer.daemon = True
    timer.start()
    try:
        for _, envelope in reader.follow(stop, after=after, block_ms=200):
            data = envelope.data
            if isinstance(data, ev.CommandAccepted | ev.CommandRejected) and (
                    data.command_id == command_id):
                return data
    finally:
        timer.cancel()
    return None


# -- watch ---------------------------------------------------------------------------------------
@jobs.command()
@click.argument("job_id")
@click.option("--timeout", default=0.0, type=click.FloatRange(0),
              help="Give up after this many seconds (0: wait until the job ends).")
def watch(job_id: str, timeout: float) -> None:
    """Show JOB_ID's live progress until it ends; exit 1 unless it completed."""
    watch_job(job_id, timeout=timeout)
