"""Rollups: the 5-minute and 1-hour tiers, computed incrementally from raw.

Each tier has a watermark (state.py): buckets before it are final. A run
closes the buckets that ended at least HISTORY_LATE_SECONDS + a margin ago,
aggregating in the database, a chunk of series at a time, and moves the
watermark. Samples that arrive later than HISTORY_LATE_SECONDS are marked by
ingest (`Late`, per series and hour); a run computes those hours again from
the raw tier (hot rows and blocks merged). Every bucket is computed from all
of its raw samples and written with an upsert, so running twice changes
nothing and a re-sent sample, stored once, cannot count twice.

The aggregate is read outside any write transaction and written in a short
one, so that on SQLite ingest never waits long for the write lock; a sample
committed in between is late by construction and gets marked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from vigil.metrics import raw, state
from vigil.metrics.buckets import Buckets, aggregate, floor
from vigil.metrics.locks import exclusive, let_writers_in
from vigil.metrics.models import Late, Retention, Series

FIVE_MINUTES = 300
HOUR = 3600
# Bucket ends newer than this margin past the late limit stay open.
SETTLE_MARGIN_SECONDS = 120
SERIES_PER_CHUNK = {"sqlite": 2000, "postgresql": 10000}
# Series-hours per transaction: a few tens of milliseconds of work.
LATE_HOURS_PER_BATCH = 100
LATE_SECONDS_PER_RUN = 20.0
# One run catches up at most this much per tier (a long outage of the job is
# caught up over several runs, each a bounded amount of work).
MAX_CATCH_UP_SECONDS = 24 * HOUR


@dataclass
class RollupStats:
    buckets_5m: int = 0
    buckets_1h: int = 0
    late_hours: int = 0
    seconds: float = 0.0
    skipped: bool = False


def _series_ranges() -> list[tuple[int, int]]:
    size = SERIES_PER_CHUNK.get(connection.vendor, 2000)
    ids = list(Series.objects.order_by("pk").values_list("pk", flat=True))
    return [(ids[i], ids[min(i + size, len(ids)) - 1]) for i in range(0, len(ids), size)]


def _aggregate_sql(source: str, width: int, columns: str) -> str:
    """Aggregates of `source` rows per series and bucket of `width`, with the
    value of the newest row as `last`. `columns` maps min, max, sum, count and
    last onto the source's columns."""
    mn, mx, sm, n, last = columns.split(",")
    return (
        f"SELECT a.series_id, a.bucket, a.mn, a.mx, a.sm, a.n, x.{last} "  # noqa: S608
        "FROM (SELECT x.series_id, (x.ts / %(w)s) * %(w)s AS bucket, "
        f"MIN(x.{mn}) AS mn, MAX(x.{mx}) AS mx, SUM(x.{sm}) AS sm, {n} AS n, MAX(x.ts) AS lts "
        # CROSS JOIN makes SQLite walk the series and seek each one's key range.
        f"FROM metrics_series s CROSS JOIN {source} x "
        "WHERE x.series_id = s.id AND s.id >= %(lo)s AND s.id <= %(hi)s "
        "AND x.ts >= %(start)s AND x.ts < %(end)s "
        "GROUP BY x.series_id, bucket) a "
        f"JOIN {source} x ON x.series_id = a.series_id AND x.ts = a.lts"
    ).replace("%(w)s", str(width))


def _upsert_sql(table: str) -> str:
    return (
        f"INSERT INTO {table} (series_id, ts, min, max, sum, count, last) "  # noqa: S608
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (series_id, ts) DO UPDATE SET "
        "min = excluded.min, max = excluded.max, sum = excluded.sum, "
        "count = excluded.count, last = excluded.last"
    )


def _roll_range(source: str, columns: str, table: str, width: int, start: int, end: int) -> int:
    sql = _aggregate_sql(source, width, columns)
    written = 0
    for lo, hi in _series_ranges():
        with connection.cursor() as cursor:
            cursor.execute(sql, {"lo": lo, "hi": hi, "start": start, "end": end})
            rows = cursor.fetchall()
        if rows:
            began = time.monotonic()
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(_upsert_sql(table), rows)
            let_writers_in(time.monotonic() - began)
            written += len(rows)
    return written


def _advance_5m(now: float) -> int:
    cutoff = int(floor(int(now) - settings.HISTORY_LATE_SECONDS - SETTLE_MARGIN_SECONDS, 300))
    start = state.get(state.ROLLUP_5M)
    if start is None:
        first = raw.first_hot_ts()
        start = cutoff if first is None else int(floor(first, FIVE_MINUTES))
    end = min(cutoff, start + MAX_CATCH_UP_SECONDS)
    if end <= start:
        return 0
    written = _roll_range(
        "metrics_sample",
        "value,value,value,COUNT(*),value",
        "metrics_rollup5m",
        FIVE_MINUTES,
        start,
        end,
    )
    state.put(state.ROLLUP_5M, end)
    return written


def _advance_1h() -> int:
    done_5m = state.get(state.ROLLUP_5M)
    if done_5m is None:
        return 0
    cutoff = int(floor(done_5m, HOUR))
    start = state.get(state.ROLLUP_1H)
    if start is None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT MIN((SELECT MIN(ts) FROM metrics_rollup5m r WHERE r.series_id = s.id)) "
                "FROM metrics_series s"
            )
            first = cursor.fetchone()[0]
        start = cutoff if first is None else int(floor(int(first), HOUR))
    end = min(cutoff, start + MAX_CATCH_UP_SECONDS)
    if end <= start:
        return 0
    written = _roll_range(
        "metrics_rollup5m", "min,max,sum,SUM(x.count),last", "metrics_rollup1h", HOUR, start, end
    )
    state.put(state.ROLLUP_1H, end)
    return written


def _rows(series_id: int, b: Buckets) -> list[tuple]:
    return [
        (series_id, int(t), float(lo), float(hi), float(s), int(n), float(last))
        for t, lo, hi, s, n, last in zip(b.ts, b.min, b.max, b.sum, b.count, b.last, strict=True)
    ]


def _redo_late_batch(now: float) -> int:
    """Compute again the hours that late samples fell in; returns hours done."""
    horizon = int(now) - Retention.current().raw_days * 86400
    with transaction.atomic():
        marks = Late.objects.filter(kind=Late.ROLLUP)
        if connection.vendor == "postgresql":
            marks = marks.select_for_update(skip_locked=True)
        keys = list(
            marks.order_by("start", "series_id").values_list("series_id", "start")[
                :LATE_HOURS_PER_BATCH
            ]
        )
        if not keys:
            return 0
        hours: dict[int, list[int]] = {}
        for series_id, start in keys:
            hours.setdefault(start, []).append(series_id)
        for start, series_ids in hours.items():
            Late.objects.filter(kind=Late.ROLLUP, start=start, series_id__in=series_ids).delete()
            # Raw history past retention is gone: its rollups are all that is left.
            if start < horizon:
                continue
            found = raw.read(series_ids, start, start + HOUR - 1)
            rows_5m: list[tuple] = []
            rows_1h: list[tuple] = []
            for series_id, (ts, values) in found.items():
                rows_5m += _rows(series_id, aggregate(ts, values, FIVE_MINUTES))
                rows_1h += _rows(series_id, aggregate(ts, values, HOUR))
            with connection.cursor() as cursor:
                if rows_5m:
                    cursor.executemany(_upsert_sql("metrics_rollup5m"), rows_5m)
                if rows_1h:
                    cursor.executemany(_upsert_sql("metrics_rollup1h"), rows_1h)
    return len(keys)


def run(now: float | None = None) -> RollupStats:
    """Close the settled buckets of both tiers and redo the hours of late samples."""
    now = time.time() if now is None else now
    stats = RollupStats()
    began = time.monotonic()
    with exclusive("rollup") as won:
        if not won:
            stats.skipped = True
            return stats
        stats.buckets_5m = _advance_5m(now)
        # Bounded: while agents keep replaying old data, new marks keep
        # coming, and compaction and retention must get their turn.
        deadline = time.monotonic() + LATE_SECONDS_PER_RUN
        while time.monotonic() < deadline and (done := _redo_late_batch(now)):
            stats.late_hours += done
        stats.buckets_1h = _advance_1h()
    stats.seconds = time.monotonic() - began
    return stats
