"""Reading the raw tier: compressed blocks and hot rows, merged.

A sample lives in the hot table until compaction moves it into its series'
block; a sample re-sent after that lands in the hot table again until the next
compaction merges it. Readers never see the difference: both sources are read
and merged, and a timestamp present in both counts once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.conf import settings
from django.db import connection

from vigil.metrics import codec

Points = tuple[np.ndarray, np.ndarray]
EMPTY: Points = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))


def _placeholders(n: int) -> str:
    return ",".join(["%s"] * n)


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
    ts, values, counts = codec.decode_many([bytes(data) for _, data in rows])
    owners = np.repeat(np.fromiter((sid for sid, _ in rows), dtype=np.int64), counts)
    keep = (ts >= start) & (ts <= end)
    ts, values, owners = ts[keep], values[keep], owners[keep]
    out: dict[int, Points] = {}
    bounds = np.flatnonzero(np.diff(owners)) + 1
    for part in np.split(np.arange(len(owners)), bounds):
        if len(part):
            out[int(owners[part[0]])] = (ts[part], values[part])
    return out


def read_hot(series_ids: Sequence[int], start: int, end: int) -> dict[int, Points]:
    """Samples in [start, end] from the hot table, per series."""
    if not series_ids:
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
    table = np.array(rows, dtype=np.float64)
    owners = table[:, 0].astype(np.int64)
    ts = table[:, 1].astype(np.int64)
    # Values went through float64 unchanged; ids and ts are exact below 2**53.
    values = np.array([r[2] for r in rows], dtype=np.float64)
    out: dict[int, Points] = {}
    bounds = np.flatnonzero(np.diff(owners)) + 1
    for part in np.split(np.arange(len(owners)), bounds):
        out[int(owners[part[0]])] = (ts[part], values[part])
    return out


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
