"""Compaction: raw samples older than HISTORY_COMPACT_AFTER_SECONDS move from
the hot table into compressed blocks, one per series and window.

Windows are compacted in order behind a watermark (`compacted_until`), never
ahead of the 5-minute rollup, which reads the hot table. A chunk of series is
read outside any write transaction, merged with the blocks it already has and
encoded; then a short transaction checks that no sample arrived meanwhile
(same row count), writes the blocks and deletes the rows (SQLite, and the
default partition on PostgreSQL). On PostgreSQL the window's partition is
dropped at the end, after the same check for the whole window. Samples that
arrive for a compacted window are marked late by ingest and merged into their
block by a later run, so a sample re-sent after compaction is stored once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from vigil.metrics import codec, partitions, raw, state
from vigil.metrics.buckets import floor
from vigil.metrics.locks import exclusive, let_writers_in
from vigil.metrics.models import Late, Series

SERIES_PER_CHUNK = {"sqlite": 50, "postgresql": 2000}
TARGET_SECONDS = 0.15
MAX_CHUNK = 5000
LATE_WINDOWS_PER_BATCH = 200
LATE_SECONDS_PER_RUN = 20.0
MAX_WINDOWS_PER_RUN = 12


@dataclass
class CompactionStats:
    windows: int = 0
    samples: int = 0
    blocks: int = 0
    bytes: int = 0
    late_windows: int = 0
    seconds: float = 0.0
    skipped: bool = False


def _count_hot(series_ids: list[int], start: int, end: int) -> int:
    marks = ",".join(["%s"] * len(series_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*) FROM metrics_sample WHERE series_id IN ({marks}) "  # noqa: S608
            "AND ts >= %s AND ts < %s",
            [*series_ids, start, end],
        )
        return int(cursor.fetchone()[0])


def _write_blocks(rows: list[tuple]) -> None:
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO metrics_block (series_id, start, first_ts, last_ts, count, data) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (series_id, start) DO UPDATE SET "
            "first_ts = excluded.first_ts, last_ts = excluded.last_ts, "
            "count = excluded.count, data = excluded.data",
            rows,
        )


def _delete_hot(series_ids: list[int], start: int, end: int) -> None:
    # On PostgreSQL the window's rows sit in its partition, dropped whole at the
    # end; only strays in the default partition are deleted row by row.
    table = partitions.DEFAULT if partitions.supported() else "metrics_sample"
    marks = ",".join(["%s"] * len(series_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE series_id IN ({marks}) AND ts >= %s AND ts < %s",  # noqa: S608
            [*series_ids, start, end],
        )


def _clear_marks(series_ids: list[int], start: int) -> None:
    Late.objects.filter(kind=Late.COMPACT, start=start, series_id__in=series_ids).delete()


def compact_chunk(
    series_ids: list[int], start: int, stats: CompactionStats, clear_marks: bool = False
) -> int:
    """Move the hot samples of these series in one window into their blocks;
    returns the hot rows moved. With clear_marks, their late marks go in the
    same transaction (a sample arriving after it leaves a new mark)."""
    end = start + settings.HISTORY_BLOCK_SECONDS
    while True:
        hot = raw.read_hot(series_ids, start, end - 1)
        seen = sum(len(ts) for ts, _ in hot.values())
        if not seen:
            if clear_marks:
                with transaction.atomic():
                    if _count_hot(series_ids, start, end):
                        continue
                    _clear_marks(series_ids, start)
            return 0
        old = raw.read_blocks(list(hot), start, end - 1)
        rows = []
        for series_id, (ts, values) in hot.items():
            if series_id in old:
                ts, values = codec.merge(*old[series_id], ts, values)
            data = codec.encode(ts, values)
            rows.append((series_id, start, int(ts[0]), int(ts[-1]), len(ts), data))
        began = time.monotonic()
        with transaction.atomic():
            # A sample that arrived since the read is compacted by the next pass.
            if _count_hot(series_ids, start, end) != seen:
                continue
            _write_blocks(rows)
            _delete_hot(series_ids, start, end)
            if clear_marks:
                _clear_marks(series_ids, start)
        let_writers_in(time.monotonic() - began)
        stats.samples += seen
        stats.blocks += len(rows)
        stats.bytes += sum(len(r[5]) for r in rows)
        return seen


def compact_window(start: int, stats: CompactionStats) -> bool:
    """Compact every series' samples of one window; False if the partition
    could not be dropped yet (the window is done again next run)."""
    ids = list(Series.objects.order_by("pk").values_list("pk", flat=True))
    size = SERIES_PER_CHUNK.get(connection.vendor, 200)
    moved = i = 0
    while i < len(ids):
        chunk = ids[i : i + size]
        began = time.monotonic()
        moved += compact_chunk(chunk, start, stats)
        i += len(chunk)
        if connection.vendor == "sqlite":
            size = _next_size(size, time.monotonic() - began)
    if not partitions.supported():
        return True
    return _drop_compacted_partition(start, moved)


def _next_size(size: int, took: float) -> int:
    """Aim each chunk at TARGET_SECONDS: on SQLite its write transaction holds
    the one write lock that ingest waits for."""
    if took > TARGET_SECONDS:
        return max(size // 2, 1)
    if took < TARGET_SECONDS / 3:
        return min(size * 2, MAX_CHUNK)
    return size


def _drop_compacted_partition(start: int, moved: int) -> bool:
    if start not in partitions.existing():
        return True
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {partitions.name(start)}")  # noqa: S608
        if int(cursor.fetchone()[0]) != moved:
            return False
    return partitions.drop(start)


def _next_window(after: int | None) -> int | None:
    """The first window at or after `after` that holds hot samples or, on
    PostgreSQL, a partition: empty stretches are skipped in one step."""
    first = raw.first_hot_ts(after)
    candidates = [] if first is None else [first]
    if partitions.supported():
        candidates += [p for p in partitions.existing() if after is None or p >= after]
    if not candidates:
        return None
    return int(floor(min(candidates), settings.HISTORY_BLOCK_SECONDS))


def _redo_late(stats: CompactionStats, done_until: int) -> None:
    """Merge samples that arrived for windows compacted already into their
    blocks, for at most LATE_SECONDS_PER_RUN (the rest next run)."""
    deadline = time.monotonic() + LATE_SECONDS_PER_RUN
    while time.monotonic() < deadline:
        marks = list(
            Late.objects.filter(kind=Late.COMPACT, start__lt=done_until)
            .order_by("start", "series_id")
            .values_list("series_id", "start")[:LATE_WINDOWS_PER_BATCH]
        )
        if not marks:
            return
        windows: dict[int, list[int]] = {}
        for series_id, start in marks:
            windows.setdefault(start, []).append(series_id)
        for start, series_ids in windows.items():
            compact_chunk(series_ids, start, stats, clear_marks=True)
            stats.late_windows += 1


def run(now: float | None = None) -> CompactionStats:
    """Compact the windows that are old enough and rolled up; then late samples."""
    now = time.time() if now is None else now
    stats = CompactionStats()
    began = time.monotonic()
    window = settings.HISTORY_BLOCK_SECONDS
    with exclusive("compaction") as won:
        if not won:
            stats.skipped = True
            return stats
        rolled = state.get(state.ROLLUP_5M)
        if rolled is None:
            # The 5-minute rollup reads the hot table: it has to go first.
            stats.skipped = True
            return stats
        cutoff = int(floor(int(now) - settings.HISTORY_COMPACT_AFTER_SECONDS, window))
        cutoff = min(cutoff, int(floor(rolled, window)))
        done = state.get(state.COMPACTED)
        start = _next_window(done)
        while start is not None and start + window <= cutoff:
            if stats.windows >= MAX_WINDOWS_PER_RUN or not compact_window(start, stats):
                break
            done = start + window
            state.put(state.COMPACTED, done)
            stats.windows += 1
            start = _next_window(done)
        if done is not None:
            _redo_late(stats, done)
    stats.seconds = time.monotonic() - began
    return stats
