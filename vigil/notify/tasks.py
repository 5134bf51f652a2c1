"""Periodic notification tasks, plain functions for the embedded scheduler
and Celery alike."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from vigil.lib import http, stats
from vigil.notify import delivery
from vigil.notify.transports import _allowed_networks

log = logging.getLogger(__name__)


def deliver_notifications(now: datetime | None = None) -> dict[str, int]:
    return delivery.deliver_due(now)


def engine_healthy(now: datetime) -> bool:
    """True while the alert engine evaluates: some enabled rule was evaluated
    within three intervals (or there is no rule to evaluate)."""
    from vigil.alerts.models import Rule

    enabled = Rule.objects.filter(enabled=True)
    if not enabled.exists():
        return True
    last = enabled.aggregate(last=Max("last_evaluated"))["last"]
    window = timedelta(seconds=3 * settings.ALERT_EVALUATION_INTERVAL_SECONDS)
    return last is not None and last >= now - window


def watchdog_ping(now: datetime | None = None) -> str:
    """Ping the dead man's switch if Vigil is healthy; say nothing if not, so
    the switch raises the alarm that Vigil itself cannot."""
    url = settings.WATCHDOG_URL
    if not url:
        return "off"
    now = now or timezone.now()
    if not engine_healthy(now):
        log.warning("watchdog: the alert engine has not evaluated lately; not pinging")
        stats.incr("vigil_watchdog_pings_total", outcome="unhealthy")
        return "unhealthy"
    try:
        response = http.get(url, timeout=10, allowed_networks=_allowed_networks())
    except http.HttpError as exc:
        log.warning("watchdog ping failed: %s", exc)
        stats.incr("vigil_watchdog_pings_total", outcome="error")
        return f"error: {exc}"
    outcome = "ok" if 200 <= response.status < 300 else f"status {response.status}"
    stats.incr("vigil_watchdog_pings_total", outcome="ok" if outcome == "ok" else "error")
    return outcome
