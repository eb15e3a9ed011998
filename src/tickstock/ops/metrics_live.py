"""How far the stored live bars are behind real time, read from PostgreSQL at scrape time.

The stream role's own gauges (``tickstock_stream_*``) say how far its processing lags behind
what the feed delivered; they cannot see a feed that delivers late or not at all. This one looks
at the result instead: the newest stored minute bar against the clock. A minute bar is stamped
with its start and complete a minute later, so during a session

    behind = now - (newest minute bar's start + 1 min)     (since the open when none today)

is a few seconds when live data flows and grows by a second per second when it stops. Outside
regular hours nothing is expected and it is 0. The newest bar is one backward step of the
``bars (timeframe, ts)`` index, cheap at any table size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from psycopg import Connection

from tickstock.contracts.common import Timeframe
from tickstock.market.calendar import MarketCalendar

BAR = timedelta(minutes=1)


def live_behind_seconds(newest: datetime | None, calendar: MarketCalendar, now: datetime) -> float:
    """Seconds the stored minute bars are behind ``now`` (0 outside regular hours)."""
    session = calendar.session_at(now)
    if session is None:
        return 0.0
    complete_until = session.open if newest is None or newest < session.open else newest + BAR
    return max(0.0, (now - complete_until).total_seconds())


def live_families(conn: Connection[Any], calendar: MarketCalendar, now: datetime) -> Iterator[Metric]:
    row = conn.execute("SELECT max(ts) FROM bars WHERE timeframe = %s",
                       (Timeframe.MIN1.value,)).fetchone()
    newest: datetime | None = row[0] if row else None
    if newest is not None:
        stamp = GaugeMetricFamily("tickstock_live_newest_minute_bar_timestamp_seconds",
                                  "Start of the newest stored minute bar (Unix time).")
        stamp.add_metric([], newest.timestamp())
        yield stamp
    behind = GaugeMetricFamily(
        "tickstock_live_bars_behind_seconds",
        "During regular hours, seconds between now and the end of the newest stored minute "
        "bar (since the open when none today); 0 outside regular hours.")
    behind.add_metric([], live_behind_seconds(newest, calendar, now))
    yield behind


def describe_families() -> Iterable[Metric]:
    yield GaugeMetricFamily("tickstock_live_newest_minute_bar_timestamp_seconds", "")
    yield GaugeMetricFamily("tickstock_live_bars_behind_seconds", "")
