"""Periodic history tasks, plain functions run by the embedded scheduler and Celery."""

from __future__ import annotations

import logging
import time

from vigil.metrics import compaction, partitions, retention, rollup

log = logging.getLogger(__name__)


def maintain_history(now: float | None = None) -> dict[str, object]:
    """Keep the tiers in shape, in the order they depend on each other:
    partitions ahead of ingest, rollups before compaction (they read the hot
    table), retention last. Each step is safe to run twice at once."""
    now = time.time() if now is None else now
    created = partitions.ensure(now)
    rolled = rollup.run(now)
    log.debug("history rollup: %s", vars(rolled))
    compacted = compaction.run(now)
    log.debug("history compaction: %s", vars(compacted))
    kept = retention.run(now)
    result = {
        "partitions_created": len(created),
        "rollup": vars(rolled),
        "compaction": vars(compacted),
        "retention": vars(kept),
    }
    log.debug("history maintenance: %s", result)
    return result


def checkpoint_wal() -> tuple[int, int] | None:
    """SQLite: copy the write-ahead log into the database file in the background
    (PASSIVE: it never takes the write lock). Without it the commit that fills
    the log past wal_autocheckpoint does the copy itself, holding up every
    other writer, ingest included, for up to a second."""
    from django.db import connection

    if connection.vendor != "sqlite":
        return None
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
        _, log_frames, copied = cursor.fetchone()
    return log_frames, copied
