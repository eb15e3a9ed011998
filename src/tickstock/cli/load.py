"""``tickstock load`` and ``tickstock universes``.

``load`` builds the job the web app's historical-data page submits (``historical_load``,
``multi_timeframe_load`` with several timeframes, ``universe_seed`` with ``--seed``,
``file_import`` with ``--file``), queues it for the workers and follows it with a progress bar,
then prints a summary table. ``--inline`` runs it in this process instead (PostgreSQL only: no
worker or Redis needed) and records it the same way. ``--retry-failed JOB`` re-runs exactly the
units that failed in job JOB.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any

import click
import psycopg
from psycopg_pool import ConnectionPool
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tickstock.cli.bus import console, redis_client
from tickstock.cli.context import database_pool, settings
from tickstock.cli.jobs import build_job, watch
from tickstock.contracts.events import JobProgress, JobStatus
from tickstock.contracts.jobs import Job
from tickstock.core.errors import NotFoundError
from tickstock.store.jobs import JobRecord

_DATE = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"])
#: Rows of the summary table; the rest is counted.
_SHOWN = 25


def _pool(*, start: bool = False) -> AbstractContextManager[ConnectionPool]:
    return database_pool("cli-load", start=start)


# -- load ----------------------------------------------------------------------------------------
@click.command()
@click.argument("symbols", nargs=-1)
@click.option("--universe", help="Load a universe's members, e.g. sp500, dow30, demo.")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Import a CSV (or .csv.gz) file of bars.")
@click.option("--seed", is_flag=True, help="With --universe: re-import its file first.")
@click.option("--timeframes", help="Comma-separated: 1min, 5min, 15min, hour, day, week, "
              "month (default: day; with --file: what the file holds).")
@click.option("--start", type=_DATE, metavar="DATE", help="First day loaded, UTC.")
@click.option("--end", type=_DATE, metavar="DATE", help="First day NOT loaded (default: tomorrow).")
@click.option("--years", default=1.0, show_default=True, type=click.FloatRange(0, 50, min_open=True),
              help="Length of the range when --start is not given.")
@click.option("--provider", type=click.Choice(["massive", "files", "synthetic"]),
              help="Market-data provider (default: the configured one).")
@click.option("--symbol", "file_symbol", help="With --file: the symbol of files without one.")
@click.option("--retry-failed", "retry_of", metavar="JOB_ID",
              help="Re-run exactly the failed symbols of an earlier job.")
@click.option("--inline", is_flag=True, help="Run here instead of on a worker.")
@click.option("--no-wait", is_flag=True, help="Queue the job, print its id, do not follow it.")
@click.pass_context
def load(ctx: click.Context, /, *, symbols: tuple[str, ...], inline: bool, no_wait: bool,
         retry_of: str | None, **options: Any) -> None:
    """Load bars of SYMBOLS, a --universe or a --file; tops up what is missing.

    Exit status: 0 when every symbol loaded, 2 when some failed (see the table; retry them with
    --retry-failed JOB_ID), 1 when the job failed or was cancelled.
    """
    job = _retry_job(retry_of) if retry_of else _job(symbols, **options)
    record = _run_inline(job) if inline else _submit_and_follow(ctx, job, no_wait=no_wait)
    if record is None:
        return
    _summary(record)
    if record.status is not JobStatus.COMPLETED:
        raise click.ClickException(f"job {record.job_id} {record.status.value}"
                                   + (f": {record.error}" if record.error else ""))
    if record.failed:
        ctx.exit(2)


def _job(symbols: tuple[str, ...], *, universe: str | None, path: Path | None, seed: bool,
         timeframes: str | None, file_symbol: str | None, **rest: Any) -> Job:
    if sum((bool(symbols), universe is not None, path is not None)) != 1:
        raise click.UsageError("give exactly one of SYMBOLS, --universe and --file")
    if seed and universe is None:
        raise click.UsageError("--seed needs --universe")
    if path is not None:
        if timeframes is not None and "," in timeframes:
            raise click.UsageError("--file holds one timeframe: give at most one in --timeframes")
        return build_job("file-import", path=str(path.resolve()), symbol=file_symbol,
                         timeframe=timeframes)
    timeframes = timeframes or "day"
    kind = ("universe-seed" if seed else "multi-timeframe-load" if "," in timeframes
            else "historical-load")
    try:
        return build_job(kind, symbols=",".join(symbols) or None, universe=universe,
                         timeframes=timeframes, **rest)
    except click.UsageError as exc:  # here the symbols are arguments, not --symbols
        raise click.UsageError(exc.message.replace("--symbols", "SYMBOLS")) from None


def _retry_job(job_id: str) -> Job:
    from tickstock.pipeline.jobs.data_load import retry_failed_job

    with _pool() as pool:
        job = retry_failed_job(pool, job_id, requested_by="cli")
    if job is None:
        raise NotFoundError(f"job {job_id} has no open failures to retry")
    return job


def _submit_and_follow(ctx: click.Context, job: Job, *, no_wait: bool) -> JobRecord | None:
    from tickstock.bus.submit import submit_job
    from tickstock.core.clock import LiveClock
    from tickstock.core.ids import instance_name
    from tickstock.store.jobs import JobStore

    with redis_client("cli-load") as client:
        envelope = submit_job(client, job, source=instance_name("cli"))
    click.echo(f"submitted {envelope.id} ({job.message_type})")
    if no_wait:
        return None
    with suppress(click.ClickException):  # not completed: the summary and the error follow
        ctx.invoke(watch, job_id=envelope.id, timeout=0.0)
    with _pool() as pool:
        record = JobStore(pool, LiveClock()).get(envelope.id)
    if record is None:
        raise NotFoundError(f"job {envelope.id} has no record")
    return record


def _run_inline(job: Job) -> JobRecord:
    from tickstock.core.clock import LiveClock
    from tickstock.core.ids import instance_name
    from tickstock.market.calendar import nyse
    from tickstock.market.universes import UniverseCatalog
    from tickstock.ops.daily import provider_from_settings
    from tickstock.pipeline.jobs.data_load import DataLoadJobs
    from tickstock.pipeline.jobs.data_load_inline import run_inline

    config, calendar = settings(), nyse()
    jobs = DataLoadJobs(providers=lambda name: provider_from_settings(config, calendar, name),
                        calendar=calendar,
                        catalog=UniverseCatalog([config.data_dir / "universes"]))
    stop = threading.Event()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn())
    with _pool(start=True) as pool, Progress(*columns, console=console()) as bar:
        task = bar.add_task(job.message_type.removeprefix("job."), total=None)

        def progress(p: JobProgress, line: str | None) -> None:
            bar.update(task, total=p.total or None, completed=p.processed)
            if line:
                bar.console.print(f"[red]{line}[/]", markup=True, highlight=False)

        result: list[JobRecord] = []
        runner = threading.Thread(target=lambda: result.append(run_inline(
            job, jobs.handlers(), pool=pool, clock=LiveClock(), worker=instance_name("cli"),
            on_progress=progress, stop=stop)), daemon=True)
        runner.start()
        try:
            while runner.is_alive():
                runner.join(0.2)
        except KeyboardInterrupt:
            bar.console.print("stopping at the next symbol boundary...")
            stop.set()
            runner.join()
    if not result:
        raise click.ClickException("the load stopped without a result (see the log)")
    return result[0]


def _summary(record: JobRecord) -> None:
    from tickstock.core.clock import LiveClock
    from tickstock.store import imports
    from tickstock.store.jobs import JobStore

    with _pool() as pool:
        results = JobStore(pool, LiveClock()).symbol_results(record.job_id)
        with pool.connection() as conn:
            refused = Counter((i["symbol"], i["timeframe"])
                              for i in imports.row_issues(conn, record.job_id))
    table = Table(title=f"job {record.job_id} {record.status.value}")
    for column in ("symbol", "timeframe", "status", "bars", "refused rows", "error"):
        table.add_column(column, justify="right" if column in ("bars", "refused rows") else "left")
    ordered = sorted(results, key=lambda r: (r["status"] == "ok", r["symbol"], r["timeframe"]))
    for r in ordered[:_SHOWN]:
        table.add_row(r["symbol"], r["timeframe"], r["status"], str(r["bars"]),
                      str(refused.get((r["symbol"], r["timeframe"]), 0)), r["error"] or "")
    if len(ordered) > _SHOWN:
        table.caption = f"{len(ordered) - _SHOWN} more rows (`tickstock jobs show --symbols`)"
    out = console()
    out.print(table)
    ok = sum(r["status"] == "ok" for r in results)
    out.print(f"{ok} ok, {len(results) - ok} failed, {sum(r['bars'] for r in results)} bars "
              f"written, {sum(refused.values())} rows refused", highlight=False)


# -- universes -----------------------------------------------------------------------------------
@contextmanager
def _connection() -> Iterator[psycopg.Connection[Any]]:
    with _pool() as pool, pool.connection() as conn:
        yield conn


@click.group()
def universes() -> None:
    """List, show, import, create and combine universes (named symbol sets)."""


@universes.command(name="list")
def list_() -> None:
    """Every stored universe with its kind and size; then the files that can be imported."""
    from tickstock.store import universes as store

    with _connection() as conn:
        records = store.list_universes(conn)
    table = Table("name", "kind", "members", "description")
    for u in records:
        table.add_row(u.name, u.kind, str(u.members), u.description or "")
    console().print(table if records else "no universes stored yet")
    console().print("importable: " + ", ".join(_catalog().names()), highlight=False)


@universes.command()
@click.argument("name")
def show(name: str) -> None:
    """The members of NAME with their reference data."""
    from tickstock.store import universes as store

    with _connection() as conn:
        rows = store.member_details(conn, name)
    table = Table("symbol", "name", "sector", "sub-industry", "type",
                  title=f"{name}: {len(rows)} symbols")
    for r in rows:
        table.add_row(r["symbol"], r["name"] or "", r["sector"] or "", r["sub_industry"] or "",
                      r["asset_type"])
    console().print(table)


@universes.command(name="import")
@click.argument("source")
@click.option("--name", help="Store it under this name (default: from the file name).")
@click.option("--no-sectors", is_flag=True, help="Do not store one universe per sector.")
def import_(source: str, name: str | None, no_sectors: bool) -> None:
    """Import SOURCE: a universe file (CSV with a Symbol column, or one symbol per line) or
    the name of one the catalogue has (sp500, nasdaq100, dow30, etfs)."""
    from tickstock.market.universes import definition_from_file, import_universe

    path = Path(source)
    definition = (definition_from_file(path, name=name) if path.is_file()
                  else _catalog().load(source))
    with _connection() as conn:
        results = import_universe(conn, definition, sectors=not no_sectors)
    for universe, r in results.items():
        click.echo(f"{universe}: {r.total} symbols ({r.added} added, {r.removed} removed)")


@universes.command()
@click.argument("name")
@click.argument("symbols", nargs=-1, required=True)
def create(name: str, symbols: tuple[str, ...]) -> None:
    """Create or replace the custom list NAME with SYMBOLS."""
    from tickstock.market.universes import save_custom

    with _connection() as conn:
        r = save_custom(conn, name, symbols)
    click.echo(f"{name}: {r.total} symbols ({r.added} added, {r.removed} removed)")


@universes.command()
@click.argument("name")
@click.argument("operation", type=click.Choice(["union", "intersection", "difference"]))
@click.argument("sources", nargs=-1, required=True)
def combine(name: str, operation: Any, sources: tuple[str, ...]) -> None:
    """Store NAME as the OPERATION of the universes SOURCES (difference: the first minus the
    others), e.g. `combine tech_dow intersection sp500:information-technology dow30`."""
    from tickstock.market.universes import combine as combine_universes

    with _connection() as conn:
        r = combine_universes(conn, name, operation, sources)
    click.echo(f"{name}: {r.total} symbols ({r.added} added, {r.removed} removed)")


@universes.command()
@click.argument("name")
def delete(name: str) -> None:
    """Delete the universe NAME (its symbols and bars stay)."""
    from tickstock.store import universes as store

    with _connection() as conn:
        if not store.delete_universe(conn, name):
            raise NotFoundError(f"no universe named {name!r}")
    click.echo(f"deleted {name}")


def _catalog() -> Any:
    from tickstock.market.universes import UniverseCatalog

    return UniverseCatalog([settings().data_dir / "universes"])

