"""Reading the raw tier: compressed blocks and hot rows, merged.

A sample lives in the hot table until compaction moves it into its series'
block; a sample re-sent after that lands in the hot table again until the next
compaction merges it. Readers never see the difference: both sources are read
and merged, and a timestamp present in both counts once.
"""

from __future__ import annotations

import itertools
import logging
import threading
import zlib
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from django.conf import settings
from django.db import connection

from vigil.metrics import codec
from vigil.metrics.buckets import Buckets, aggregate, combine, floor

log = logging.getLogger(__name__)

Points = tuple[np.ndarray, np.ndarray]


def by_series(owners: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(series id, row indexes) of each run of equal ids in rows sorted by series."""
    bounds = np.flatnonzero(np.diff(owners)) + 1
    parts = np.split(np.arange(len(owners)), bounds)
    return [(int(owners[part[0]]), part) for part in parts if len(part)]


def _placeholders(n: int) -> str:
    return ",".join(["%s"] * n)


class BlockCache:
    """Decoded blocks, least recently used first out, up to `max_bytes`.

    A block is keyed by its own bytes (length and CRC): one rewritten by a
    late sample is a new entry, so the cache is never stale. Charts re-read
    the same blocks at every refresh; decoding them is most of a long read.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[tuple[int, int], Points] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(data: bytes) -> tuple[int, int]:
        return len(data), zlib.crc32(data)

    def decode(self, blobs: list[bytes]) -> list[Points | None]:
        """Each blob's samples (None for a damaged one, logged)."""
        keys = [self.key(b) for b in blobs]
        with self._lock:
            found = [self._items.get(k) for k in keys]
            for k, points in zip(keys, found, strict=True):
                if points is not None:
                    self._items.move_to_end(k)
        missing = [i for i, points in enumerate(found) if points is None]
        if missing:
            for i, points in zip(missing, _decode_all([blobs[i] for i in missing]), strict=True):
                found[i] = points
            with self._lock:
                for i in missing:
                    if found[i] is not None:
                        self._add(keys[i], found[i])
        return found

    def _add(self, key: tuple[int, int], points: Points) -> None:
        if key in self._items:
            return
        self._items[key] = points
        self.size += points[0].nbytes + points[1].nbytes
        while self.size > self.max_bytes and self._items:
            _, (ts, values) = self._items.popitem(last=False)
            self.size -= ts.nbytes + values.nbytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.size = 0


def _decode_all(blobs: list[bytes]) -> list[Points | None]:
    """Decode many blobs at once; a damaged one is logged and left out, so that
    one bad block costs its two hours of one series, not every chart."""
    try:
        ts, values, counts = codec.decode_many(blobs)
    except ValueError:
        out: list[Points | None] = []
        for data in blobs:
            try:
                out.append(codec.decode(data))
            except ValueError as exc:
                log.error("unreadable history block skipped (%s)", exc)
                out.append(None)
        return out
    bounds = np.cumsum(counts)[:-1]
    return list(zip(np.split(ts, bounds), np.split(values, bounds), strict=True))


BLOCK_CACHE = BlockCache(settings.HISTORY_BLOCK_CACHE_BYTES)


def read_blocks(series_ids: Sequence[int], start: int, end: int) -> dict[int, Points]:
    """Samples in [start, end] from the blocks of the series, per series."""
    if not series_ids:
        return {}
    window = settings.HISTORY_BLOCK_SECONDS
    # Only placeholders are formatted into the text; values go as parameters.
    sql = (
        "SELECT series_id, data FROM metrics_block "  # noqa: S608
        f"WHERE series_id IN ({_placeholders(len(series_ids))}) AND start > %s AND start <= %s "
        "ORDER BY series_id, start"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*series_ids, start - window, end])
        rows = cursor.fetchall()
    if not rows:
        return {}
    rows = [(sid, bytes(data)) for sid, data in rows]
    decoded = BLOCK_CACHE.decode([data for _, data in rows])
    out: dict[int, Points] = {}
    for sid, group in itertools.groupby(zip(rows, decoded, strict=True), key=lambda r: r[0][0]):
        parts = [points for _, points in group if points is not None]
        if not parts:
            continue
        ts = np.concatenate([p[0] for p in parts])
        values = np.concatenate([p[1] for p in parts])
        keep = (ts >= start) & (ts <= end)
        if keep.any():
            out[sid] = (ts[keep], values[keep])
    return out


def read_hot(series_ids: Sequence[int], start: int, end: int) -> dict[int, Points]:
    """Samples in [start, end] from the hot table, per series."""
    if not series_ids or start > end:
        return {}
    sql = (
        "SELECT series_id, ts, value FROM metrics_sample "  # noqa: S608
        f"WHERE series_id IN ({_placeholders(len(series_ids))}) AND ts >= %s AND ts <= %s "
        "ORDER BY series_id, ts"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*series_ids, start, end])
        rows = cursor.fetchall()
    if not rows:
        return {}
    # Values go through float64 unchanged; ids and ts are exact below 2**53.
    table = np.array(rows, dtype=np.float64)
    owners = table[:, 0].astype(np.int64)
    ts = table[:, 1].astype(np.int64)
    values = table[:, 2].copy()
    return {sid: (ts[part], values[part]) for sid, part in by_series(owners)}


def first_hot_ts(after: int | None = None) -> int | None:
    """The oldest hot sample at or after `after`: one key seek per series, not
    a scan of the table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT MIN((SELECT MIN(ts) FROM metrics_sample x "
            "WHERE x.series_id = s.id AND x.ts >= %s)) FROM metrics_series s",
            [after if after is not None else -(2**62)],
        )
        row = cursor.fetchone()
    return None if row is None or row[0] is None else int(row[0])


def read(series_ids: Sequence[int], start: int, end: int) -> dict[int, Points]:
    """Every raw sample in [start, end] of each series, sorted by time, each
    timestamp once. Series without samples are absent."""
    series_ids = list(series_ids)
    blocks = read_blocks(series_ids, start, end)
    hot = read_hot(series_ids, start, end)
    out: dict[int, Points] = {}
    for sid in series_ids:
        old, new = blocks.get(sid), hot.get(sid)
        if old is not None and new is not None:
            out[sid] = codec.merge(old[0], old[1], new[0], new[1])
        elif old is not None or new is not None:
            out[sid] = old if old is not None else new
    return out


def stamped(ts: np.ndarray, values: np.ndarray, step: int) -> tuple[Buckets, np.ndarray]:
    """Buckets of raw samples, and the time of each point: a bucket holding one
    sample keeps that sample's exact time, others are stamped at their start."""
    b = aggregate(ts, values, step)
    if step == 1:
        return b, b.ts
    first = ts[np.searchsorted(ts, b.ts)]
    return b, np.where(b.count == 1, first, b.ts)


def _hot_buckets(
    series_ids: Sequence[int], start: int, end: int, step: int
) -> dict[int, tuple[Buckets, np.ndarray]]:
    """Hot samples in [start, end] aggregated by the database into buckets of
    `step`, with the time of each point (see `stamped`)."""
    if not series_ids or start > end:
        return {}
    sql = (
        "SELECT series_id, ts / %s, MIN(ts), MIN(value), MAX(value), SUM(value), COUNT(*) "  # noqa: S608
        f"FROM metrics_sample WHERE series_id IN ({_placeholders(len(series_ids))}) "
        "AND ts >= %s AND ts <= %s GROUP BY 1, 2 ORDER BY 1, 2"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [step, *series_ids, start, end])
        rows = cursor.fetchall()
    return grouped_buckets(rows, step)


def grouped_buckets(rows: list[tuple], step: int) -> dict[int, tuple[Buckets, np.ndarray]]:
    """Per series, the buckets of rows (series_id, ts // step, first ts, min,
    max, sum, count) that a GROUP BY returned sorted by series and bucket, and
    the time of each point (see `stamped`). `last` is not read."""
    if not rows:
        return {}
    # Bucket numbers, timestamps and counts are exact in float64 (below 2**53).
    table = np.array(rows, dtype=np.float64)
    owners = table[:, 0].astype(np.int64)
    bucket_ts = table[:, 1].astype(np.int64) * step
    first = table[:, 2].astype(np.int64)
    counts = table[:, 6].astype(np.int64)
    out = {}
    for sid, part in by_series(owners):
        b = Buckets(
            ts=bucket_ts[part],
            min=table[part, 3],
            max=table[part, 4],
            sum=table[part, 5],
            count=counts[part],
            last=np.full(len(part), np.nan),
        )
        out[sid] = (b, np.where(b.count == 1, first[part], b.ts))
    return out


def _join(a: tuple[Buckets, np.ndarray], b: tuple[Buckets, np.ndarray], step: int):
    """Buckets of two disjoint sample sets, the older first, merged per bucket;
    a merged bucket of one sample keeps that sample's time."""
    (ba, fa), (bb, fb) = a, b
    both = Buckets(
        *(np.concatenate([getattr(ba, f), getattr(bb, f)]) for f in Buckets.__dataclass_fields__)
    )
    firsts = np.concatenate([fa, fb])
    merged = combine(both, step)
    starts = floor(both.ts, step)
    keep = np.concatenate(([True], starts[1:] != starts[:-1]))
    first = firsts[keep]
    return merged, np.where(merged.count == 1, first, merged.ts)


def read_buckets(
    series_ids: Sequence[int], start: int, end: int, step: int
) -> dict[int, tuple[Buckets, np.ndarray]]:
    """Every raw sample in [start, end] in buckets of `step` seconds, each
    timestamp counted once, per series, with the time of each point (see
    `stamped`). Series without samples are absent.

    Hot rows in windows that have no block yet cannot repeat a block's
    sample, so the database aggregates them (a few rows per bucket on the wire
    instead of one per sample); older hot rows, which may repeat one, are
    merged with the blocks sample by sample.
    """
    series_ids = list(series_ids)
    blocks = read_blocks(series_ids, start, end)
    window = settings.HISTORY_BLOCK_SECONDS
    # Windows up to the newest block of any of the series are read exactly.
    newest = max((int(ts[-1]) for ts, _ in blocks.values() if len(ts)), default=None)
    boundary = start if newest is None else max(start, int(floor(newest, window)) + window)
    old_hot = read_hot(series_ids, start, min(boundary - 1, end))
    new_hot = _hot_buckets(series_ids, boundary, end, step)
    out: dict[int, tuple[Buckets, np.ndarray]] = {}
    for sid in series_ids:
        old, hot = blocks.get(sid), old_hot.get(sid)
        if old is not None and hot is not None:
            old = codec.merge(old[0], old[1], hot[0], hot[1])
        elif old is None:
            old = hot
        exact = stamped(old[0], old[1], step) if old is not None and len(old[0]) else None
        recent = new_hot.get(sid)
        if exact is not None and recent is not None:
            out[sid] = _join(exact, recent, step)
        elif exact is not None or recent is not None:
            out[sid] = exact if exact is not None else recent
    return out
