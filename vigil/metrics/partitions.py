"""Time partitions of the hot sample table on PostgreSQL.

One partition per block window (HISTORY_BLOCK_SECONDS), named after the unix
time it starts at, created ahead of time by `ensure`. Compaction drops a
window's partition once its samples are in blocks, and retention drops what
is past the raw tier's age, so old samples leave by DROP TABLE instead of
row deletes. Rows that find no partition (very old or far-future samples, or
before `ensure` first ran) land in the default partition; creating a window's
partition moves its rows out of the default one first.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.db import connection, transaction

from vigil.ingest.parsers.base import MAX_FUTURE_SECONDS

PARENT = "metrics_sample"
DEFAULT = "metrics_sample_default"
NAME = re.compile(r"^metrics_sample_p(\d+)$")
# Windows created beyond the furthest future timestamp that ingest accepts.
SPARE_WINDOWS = 2
# Dropping a partition takes a short exclusive lock on the parent; waiting
# longer than this for it would stall ingest, so the drop is tried next run.
DROP_LOCK_TIMEOUT = "200ms"


def supported() -> bool:
    return connection.vendor == "postgresql"


def name(start: int) -> str:
    return f"metrics_sample_p{int(start)}"


def existing() -> list[int]:
    """Start times of the attached window partitions, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
            [PARENT],
        )
        names = [row[0] for row in cursor.fetchall()]
    return sorted(int(m.group(1)) for n in names if (m := NAME.match(n)))


def create(start: int) -> None:
    """Attach the partition of the window starting at `start`, moving its rows
    out of the default partition (a partition cannot be created over them)."""
    end = start + settings.HISTORY_BLOCK_SECONDS
    table = name(start)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('vigil:partitions'))")
        cursor.execute("SELECT to_regclass(%s)", [table])
        if cursor.fetchone()[0] is not None:
            return
        cursor.execute(
            f"CREATE TEMPORARY TABLE moving ON COMMIT DROP AS WITH m AS (DELETE FROM {DEFAULT} "  # noqa: S608
            "WHERE ts >= %s AND ts < %s RETURNING series_id, ts, value) SELECT * FROM m",
            [start, end],
        )
        cursor.execute(
            f"CREATE TABLE {table} PARTITION OF {PARENT} FOR VALUES FROM (%s) TO (%s)",
            [start, end],
        )
        cursor.execute(f"INSERT INTO {PARENT} SELECT * FROM moving")  # noqa: S608
        cursor.execute("DROP TABLE moving")


def ensure(now: float) -> list[int]:
    """Create the partitions from the current window to beyond the future limit;
    returns the start times created."""
    if not supported():
        return []
    window = settings.HISTORY_BLOCK_SECONDS
    first = int(now) - int(now) % window
    last = int(now) + MAX_FUTURE_SECONDS + SPARE_WINDOWS * window
    have = set(existing())
    created = []
    for start in range(first, last, window):
        if start not in have:
            create(start)
            created.append(start)
    return created


def drop(start: int) -> bool:
    """Drop a window's partition; False if its lock was not free in time."""
    from django.db import OperationalError

    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'")
            cursor.execute(f"DROP TABLE IF EXISTS {name(start)}")
    except OperationalError:
        return False
    return True
