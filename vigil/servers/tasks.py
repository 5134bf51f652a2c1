"""Periodic server tasks, plain functions run by the embedded scheduler and Celery."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from vigil.ingest import writer
from vigil.ingest.parsers.base import SeriesPoints
from vigil.servers.models import Server


def update_up(now: float | None = None) -> dict[str, int]:
    """Mark overdue servers down and write the `up` sample of every server.

    1. Servers that are up but have not reported for SERVER_DOWN_AFTER_SECONDS
       become down, and so do new servers silent past SERVER_NEW_GRACE_SECONDS.
    2. Every server that has reported once and is not retired gets an `up`
       sample at `now`: 1 while it reports, 0 while it is down.
    Safe to run twice at once: the update is conditional and a sample written
    twice is stored once.
    """
    now = time.time() if now is None else now
    moment = datetime.fromtimestamp(now, tz=UTC)
    cutoff = moment - timedelta(seconds=settings.SERVER_DOWN_AFTER_SECONDS)
    went_down = Server.objects.filter(status=Server.Status.UP, last_seen__lt=cutoff).update(
        status=Server.Status.DOWN
    )
    # A server added by hand that never reported is "new" for a grace period
    # (time to install its agent), then down like any other.
    grace = moment - timedelta(seconds=settings.SERVER_NEW_GRACE_SECONDS)
    went_down += Server.objects.filter(
        status=Server.Status.NEW, last_seen__isnull=True, created__lt=grace
    ).update(status=Server.Status.DOWN)
    servers = Server.objects.filter(
        Q(status=Server.Status.UP, last_seen__isnull=False) | Q(status=Server.Status.DOWN)
    ).values_list("pk", "status")
    ts = int(now)
    items = [
        (pk, SeriesPoints(None, "up", (), [ts], [1.0 if status == Server.Status.UP else 0.0]))
        for pk, status in servers
    ]
    with transaction.atomic():
        writer.write_now(items, mark_seen=False)
    return {"went_down": went_down, "up_samples": len(items)}
