"""Small web-side services shared by pages and API routes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tickstock.core.timeutil import NEW_YORK
from tickstock.web.config import WebDeps

if TYPE_CHECKING:
    from tickstock.web.live import LiveHub


def market_status(deps: WebDeps) -> dict[str, Any]:
    """Open / closed / early close, the current session, next open and close (UTC)."""
    now = deps.clock.now()
    if deps.calendar is None:
        return {"state": "unknown", "as_of": now, "message": "market calendar not loaded"}
    status = deps.calendar.status(now)
    session = status.session
    today = None
    if session is not None:
        today = session
    elif deps.calendar.is_session(now.astimezone(NEW_YORK).date()):
        today = deps.calendar.session(now.astimezone(NEW_YORK).date())
    if status.is_open:
        state = "early_close" if session is not None and session.early_close else "open"
    else:
        state = "closed"
    return {
        "state": state,
        "is_open": status.is_open,
        "as_of": now,
        "session_date": today.day.isoformat() if today else None,
        "session_open": today.open if today else None,
        "session_close": today.close if today else None,
        "early_close_today": bool(today and today.early_close),
        "next_open": status.next_open,
        "next_close": status.next_close,
        "last_complete_session": status.last_complete_session.day.isoformat(),
    }


def services_snapshot(deps: WebDeps, hub: LiveHub) -> dict[str, Any]:
    """Everything the services page shows, in one read."""
    from tickstock.web.reads import services as reads

    instances = hub.tracker.update(reads.heartbeats(deps.redis), deps.clock.now())
    redis_state = reads.redis_health(deps.redis)
    up = redis_state["status"] == "up"
    return {
        "as_of": deps.clock.now(),
        "instances": instances,
        "redis": redis_state,
        "postgres": reads.postgres_health(deps.pool),
        "errors": reads.recent_errors(deps.redis) if up else [],
        "dead_letters": reads.dead_letters(deps.redis, deps.config.dead_letter_limit) if up else [],
        "web": {"instance": deps.config.instance, "version": deps.config.version,
                "live_clients": hub.clients},
    }
