"""Compatibility with the old system's job channels (seed 003).

The old web app published data-load jobs on the pub/sub channel ``tickstock.jobs.data_load``
and cancels on ``tickstock.jobs.control``. Every worker subscribes to both; for each message
exactly one worker (``SET NX`` on a marker key) turns it into normal durable work:

    data_load {job_id, job_type, symbols|universe_type, timeframes|timespan, years, ...}
        → job.historical_load | job.universe_seed | job.multi_timeframe_load on the jobs
          stream, same job id, range [now - years, tomorrow 00:00 UTC)
    control {action: "cancel", job_id}
        → command.cancel on the commands stream

A message that does not parse goes to the dead-letter stream with the reason. Pub/sub keeps
nothing for absent subscribers: that is the old system's weakness, and why new producers use
the streams.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from datetime import datetime, time, timedelta
from typing import Any, Final

import redis
from pydantic import ValidationError

from tickstock.bus import deadletter
from tickstock.bus.connection import TRANSIENT_ERRORS, Backoff
from tickstock.bus.metrics import RECONNECTS
from tickstock.bus.submit import send_command, submit_job
from tickstock.contracts import names
from tickstock.contracts.commands import Cancel
from tickstock.contracts.common import Timeframe
from tickstock.contracts.jobs import HistoricalLoad, Job, MultiTimeframeLoad, UniverseSeed
from tickstock.contracts.legacy import LegacyControl, LegacyDataLoad
from tickstock.core.clock import Clock
from tickstock.core.errors import ContractError

log = logging.getLogger(__name__)

#: A legacy message is taken over once per this many seconds (markers expire after).
_SEEN_TTL_S: Final = 24 * 3600


def to_job(legacy: LegacyDataLoad, *, now: datetime) -> Job:
    """The durable job a legacy data-load message stands for."""
    end = datetime.combine(now.date() + timedelta(days=1), time(0), tzinfo=now.tzinfo)
    start = end - timedelta(days=round(365.25 * legacy.years))
    timeframes = legacy.timeframes or ((legacy.timespan,) if legacy.timespan else (Timeframe.DAY,))
    universe = legacy.universe_type.lower() if legacy.universe_type else None
    common: dict[str, Any] = {"timeframes": timeframes, "start": start, "end": end,
                              "requested_by": legacy.requested_by or "legacy"}
    try:
        if legacy.job_type == "universe_seed":
            if universe is None:
                raise ContractError("universe_seed needs universe_type")
            return UniverseSeed(universe=universe, **common)
        target: dict[str, Any] = (
            {"symbols": legacy.symbols} if legacy.symbols else {"universe": universe})
        model = MultiTimeframeLoad if legacy.job_type == "multi_timeframe_load" else HistoricalLoad
        return model(**target, **common)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ContractError(f"cannot convert {legacy.job_type}: {err['msg']}") from None


class SeedCompatSubscriber:
    """Listens on the legacy channels in a daemon thread until ``stop``."""

    def __init__(self, client: redis.Redis, *, source: str, clock: Clock) -> None:
        self._client = client
        self._source = source
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()  # subscribed (tests wait for it before publishing)

    def start(self) -> SeedCompatSubscriber:
        self._thread = threading.Thread(target=self._run, daemon=True, name="seed-compat")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)

    def handle(self, channel: str, raw: bytes) -> None:
        """Take over one legacy message (or dead-letter it)."""
        try:
            if channel == names.LEGACY_DATA_LOAD_CHANNEL:
                self._data_load(raw)
            elif channel == names.LEGACY_CONTROL_CHANNEL:
                self._control(raw)
        except ContractError as exc:
            self._dead_letter(channel, raw, str(exc))

    def _data_load(self, raw: bytes) -> None:
        legacy = self._parse(LegacyDataLoad, raw)
        job = to_job(legacy, now=self._clock.now())
        if self._first(f"data_load:{legacy.job_id}"):
            submit_job(self._client, job, source=self._source, job_id=legacy.job_id)
            log.info("legacy %s job %s queued as %s", legacy.job_type, legacy.job_id,
                     job.message_type, extra={"job_id": legacy.job_id})

    def _control(self, raw: bytes) -> None:
        control = self._parse(LegacyControl, raw)
        if self._first(f"control:{control.action}:{control.job_id}"):
            send_command(self._client, Cancel(job_id=control.job_id, requested_by="legacy"),
                         source=self._source, correlation_id=control.job_id)

    @staticmethod
    def _parse(model: type[LegacyDataLoad] | type[LegacyControl], raw: bytes) -> Any:
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ContractError(f"legacy message refused: {where or 'body'}: {err['msg']}"
                                ) from None

    def _first(self, key: str) -> bool:
        return bool(self._client.set(names.legacy_seen_key(key), self._source, nx=True,
                                     ex=_SEEN_TTL_S))

    def _dead_letter(self, channel: str, raw: bytes, reason: str) -> None:
        digest = hashlib.sha256(raw).hexdigest()[:24]
        letter = deadletter.make(channel, f"pubsub-{digest}", {names.ENVELOPE_FIELD: raw},
                                 reason, now=self._clock.now(), consumer=self._source)
        if deadletter.add_once(self._client, letter, cause="malformed"):
            log.warning("legacy message on %s dead-lettered: %s", channel, reason)

    def _run(self) -> None:
        backoff = Backoff(self._clock)
        while not self._stop.is_set():
            pubsub: Any = self._client.pubsub(  # type: ignore[no-untyped-call]
                ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(names.LEGACY_DATA_LOAD_CHANNEL, names.LEGACY_CONTROL_CHANNEL)
                self.ready.set()
                backoff.reset()
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None and message["type"] == "message":
                        self.handle(message["channel"].decode(), message["data"])
            except TRANSIENT_ERRORS as exc:
                self.ready.clear()
                RECONNECTS.labels("seed_compat").inc()
                backoff.wait(exc, "legacy channel subscriber")
            finally:
                pubsub.close()
