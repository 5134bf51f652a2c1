"""Retention: each tier keeps its history for as long as `Retention` says.

On PostgreSQL whole partitions of the hot table go with DROP TABLE. Everything
else is deleted series by series in bounded statements, in transactions of
about TARGET_SECONDS each, so that on SQLite ingest never waits long for the
write lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction

from vigil.metrics import partitions
from vigil.metrics.locks import exclusive, let_writers_in
from vigil.metrics.models import Late, Retention, Series

DAY = 86400
TARGET_SECONDS = 0.02
ROWS_PER_STATEMENT = 5000


@dataclass
class RetentionStats:
    deleted: dict[str, int] = field(default_factory=dict)
    partitions_dropped: int = 0
    longest_transaction: float = 0.0
    seconds: float = 0.0
    skipped: bool = False


def _delete_older(table: str, column: str, before: int, stats: RetentionStats) -> int:
    """Delete rows of `table` whose `column` is below `before`: series after
    series, at most ROWS_PER_STATEMENT rows per statement, each transaction
    closed once it has run for TARGET_SECONDS."""
    ids = list(Series.objects.order_by("pk").values_list("pk", flat=True))
    # Only the table and column names of this module are formatted in.
    sql = (
        f"DELETE FROM {table} WHERE series_id = %s AND {column} IN "  # noqa: S608
        f"(SELECT {column} FROM {table} WHERE series_id = %s AND {column} < %s "
        f"ORDER BY {column} LIMIT {ROWS_PER_STATEMENT})"
    )
    deleted = 0
    i = 0
    while i < len(ids):
        began = time.monotonic()
        with transaction.atomic(), connection.cursor() as cursor:
            while i < len(ids) and time.monotonic() - began < TARGET_SECONDS:
                cursor.execute(sql, [ids[i], ids[i], before])
                count = max(cursor.rowcount, 0)
                deleted += count
                if count < ROWS_PER_STATEMENT:
                    i += 1
        held = time.monotonic() - began
        stats.longest_transaction = max(stats.longest_transaction, held)
        let_writers_in(held)
    stats.deleted[table] = stats.deleted.get(table, 0) + deleted
    return deleted


def run(now: float | None = None) -> RetentionStats:
    now = time.time() if now is None else now
    stats = RetentionStats()
    began = time.monotonic()
    keep = Retention.current()
    window = settings.HISTORY_BLOCK_SECONDS
    raw_before = int(now) - keep.raw_days * DAY
    with exclusive("retention") as won:
        if not won:
            stats.skipped = True
            return stats
        if partitions.supported():
            for start in partitions.existing():
                if start + window <= raw_before and partitions.drop(start):
                    stats.partitions_dropped += 1
        hot = partitions.DEFAULT if partitions.supported() else "metrics_sample"
        _delete_older(hot, "ts", raw_before, stats)
        # A block goes once its whole window is past the raw tier's age.
        _delete_older("metrics_block", "start", raw_before - window + 1, stats)
        _delete_older("metrics_rollup5m", "ts", int(now) - keep.rollup_5m_days * DAY, stats)
        _delete_older("metrics_rollup1h", "ts", int(now) - keep.rollup_1h_days * DAY, stats)
        Late.objects.filter(start__lt=raw_before - window).delete()
    stats.seconds = time.monotonic() - began
    return stats
