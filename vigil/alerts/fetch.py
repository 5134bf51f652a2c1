"""Reading what a rule needs, for all of its series at once.

1. `targets`: the rule's series (one query on the series table), filtered by
   scope and label matchers, with each series' newest sample.
2. `window_sums`: per series count, sum, min, max and the sums of a
   least-squares line over the rule's window, computed in SQL: 5-min rollups
   before the rollup watermark (weighted by their count), hot rows after it.
   One query per rule, one row per series; no samples cross the wire.
3. `window_samples`: the raw samples, for percentiles only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from django.db import connection

from vigil.alerts.evaluate import Sums, Window
from vigil.alerts.matching import labels_match, parse_matchers
from vigil.metrics import raw, state
from vigil.servers.models import Server

READ_CHUNK = 2000


@dataclass
class Targets:
    """The series a rule watches, sorted by id."""

    ids: np.ndarray  # int64
    server_ids: np.ndarray  # int64
    last_ts: np.ndarray  # float64, NaN: never
    last_value: np.ndarray  # float64
    labels: list[dict[str, str]]

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, keep: np.ndarray) -> Targets:
        picked = np.flatnonzero(keep)
        return Targets(
            self.ids[picked],
            self.server_ids[picked],
            self.last_ts[picked],
            self.last_value[picked],
            [self.labels[i] for i in picked],
        )


def scope_server_ids(rule) -> set[int] | None:
    """Servers in the rule's scope that may alert (not retired); None: all."""
    from vigil.alerts.models import Rule

    qs = Server.objects.exclude(status=Server.Status.RETIRED)
    if rule.scope == Rule.Scope.LOCATION:
        qs = qs.filter(location_id=rule.location_id)
    elif rule.scope == Rule.Scope.TAG:
        qs = qs.filter(tags=rule.tag_id)
    elif rule.scope == Rule.Scope.GROUP:
        qs = qs.filter(groups=rule.group_id)
    elif rule.scope == Rule.Scope.SERVER:
        qs = qs.filter(pk=rule.server_id)
    return set(qs.values_list("pk", flat=True))


def targets(rule) -> Targets:
    matchers = parse_matchers(rule.matchers)
    # Labels are decoded only when a matcher needs them, and the newest
    # sample comes from the series row: most rules read nothing else.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, server_id, last_ts, last_value, labels FROM metrics_series "
            "WHERE metric = %s ORDER BY id",
            [rule.metric],
        )
        rows = cursor.fetchall()
    if not rows:
        return Targets(*(np.empty(0, dtype=t) for t in ("i8", "i8", "f8", "f8")), [])
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    server_ids = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    last_ts = np.array([np.nan if r[2] is None else r[2] for r in rows], dtype=np.float64)
    last_value = np.array([np.nan if r[3] is None else r[3] for r in rows], dtype=np.float64)
    labels = [_labels(r[4]) for r in rows]
    found = Targets(ids, server_ids, last_ts, last_value, labels)
    keep = np.isin(server_ids, np.fromiter(scope_server_ids(rule), dtype=np.int64))
    if matchers:
        keep &= np.array([labels_match(matchers, lab) for lab in labels], dtype=bool)
    return found.take(keep)


def _labels(value) -> dict[str, str]:
    if isinstance(value, dict):
        return value
    return json.loads(value) if value else {}


@dataclass
class WindowSums:
    sums: Sums
    low: np.ndarray
    high: np.ndarray

    @property
    def avg(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sums.sv / self.sums.n


def _watermark_5m() -> int | None:
    return state.get(state.ROLLUP_5M)


def window_sums(metric: str, ids: np.ndarray, start: int, end: int) -> WindowSums:
    """Aggregates of every series of `metric` over [start, end], kept for `ids`."""
    watermark = _watermark_5m()
    split = start if watermark is None else max(start, watermark)
    sql = (
        "SELECT series_id, SUM(n), SUM(n * t), SUM(sv), SUM(n * t * t), SUM(sv * t), "
        "MIN(lo), MAX(hi) FROM ("
        # 5-min buckets that closed before the watermark, each at its middle.
        "SELECT r.series_id, CAST(r.count AS DOUBLE PRECISION) AS n, "
        "CAST(r.ts + 150 - %s AS DOUBLE PRECISION) AS t, r.sum AS sv, r.min AS lo, r.max AS hi "
        "FROM metrics_rollup5m r JOIN metrics_series s ON s.id = r.series_id "
        "WHERE s.metric = %s AND r.ts >= %s AND r.ts + 300 <= %s "
        "UNION ALL "
        "SELECT x.series_id, 1.0, CAST(x.ts - %s AS DOUBLE PRECISION), x.value, x.value, x.value "
        "FROM metrics_sample x JOIN metrics_series s ON s.id = x.series_id "
        "WHERE s.metric = %s AND x.ts >= %s AND x.ts <= %s"
        ") parts GROUP BY series_id ORDER BY series_id"
    )
    params = [start, metric, start, split, start, metric, split, end]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    n = len(ids)
    table = np.full((n, 7), np.nan)
    table[:, 0] = 0.0
    if rows:
        got = np.array(rows, dtype=np.float64)
        found_ids = got[:, 0].astype(np.int64)
        where = np.searchsorted(ids, found_ids)
        inside = where < n
        inside[inside] &= ids[where[inside]] == found_ids[inside]
        table[where[inside]] = got[inside, 1:]
    sums = Sums(table[:, 0], table[:, 1], table[:, 2], table[:, 3], table[:, 4], float(start))
    return WindowSums(sums, table[:, 5], table[:, 6])


def window_samples(ids: np.ndarray, start: int, end: int) -> Window:
    """Every raw sample of the series in [start, end], as one Window."""
    found: dict[int, raw.Points] = {}
    id_list = ids.tolist()
    for at in range(0, len(id_list), READ_CHUNK):
        found.update(raw.read(id_list[at : at + READ_CHUNK], start, end))
    empty = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))
    parts = [found.get(sid, empty) for sid in id_list]
    counts = np.array([len(p[0]) for p in parts], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    if not parts or not counts.sum():
        return Window(empty[0], empty[1], offsets)
    ts = np.concatenate([p[0] for p in parts]).astype(np.int64)
    values = np.concatenate([p[1] for p in parts]).astype(np.float64)
    return Window(ts, values, offsets)
