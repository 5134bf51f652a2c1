"""One runner at a time for each history job.

On PostgreSQL a session advisory lock: a second worker that finds it taken
skips its run (the first does the work), and a crashed worker's lock goes
with its connection. SQLite has one writer by design, and every job is
idempotent, so two runners there only cost time, never correctness.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


@contextmanager
def exclusive(name: str) -> Iterator[bool]:
    """Yields whether this runner holds the lock named `name`."""
    if connection.vendor != "postgresql":
        yield True
        return
    key = zlib.crc32(f"vigil:{name}".encode())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        won = cursor.fetchone()[0]
    try:
        yield won
    finally:
        if won:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def let_writers_in(held: float) -> None:
    """Pause after a write transaction of a long job, on SQLite.

    A writer that found the lock taken does not queue: SQLite's busy handler
    sleeps and retries (every 25-100 ms once it has waited a while). A job
    that starts its next transaction at once would keep winning the lock and
    starve ingest; a pause as long as the transaction held it (at least 50 ms)
    lets every waiting writer in."""
    if connection.vendor == "sqlite":
        time.sleep(max(0.05, held))
