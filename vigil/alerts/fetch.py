"""Reading what a rule needs, for all of its series at once.

1. `targets`: the rule's series (one query on the series table, scope
   included), filtered by label matchers, with each series' newest sample.
2. `window_sums`: per series count, sum, min, max and the sums of a
   least-squares line over the rule's window, computed in SQL: 5-min rollups
   before the rollup watermark (weighted by their count; whole hours of a
   long window from the 1-hour rollups), hot rows after it. One query
   (PostgreSQL) or one per tier (SQLite), one row per series; no samples
   cross the wire.
3. `window_samples`: the raw samples, for percentiles only.

The window queries walk the rule's series ids and seek each one in the
(series_id, ts) key: a window is a few rows of each series, at the end of
tables of many hours. Joining on the metric instead lets PostgreSQL choose a
scan of the whole hot partition (seconds at 250,000 series).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction
from django.db.models import TextField
from django.db.models.functions import Cast

from vigil.alerts.evaluate import Sums, Window
from vigil.alerts.matching import labels_match, parse_matchers
from vigil.metrics import raw, state
from vigil.metrics.models import Series
from vigil.servers.models import Server

READ_CHUNK = 2000
FIVE_MINUTES = 300
HOUR = 3600


class Labels(Sequence):
    """The label sets of the targets, each decoded from its JSON text when
    first read: most rules have no matchers and look only at the few series
    that change state, and decoding 35,000 of them costs more than the rule."""

    def __init__(self, items: list) -> None:
        self._items = items  # JSON text, or an already decoded dict

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        item = self._items[i]
        if not isinstance(item, dict):
            item = self._items[i] = _decode(item)
        return item

    def take(self, picked: Sequence[int]) -> Labels:
        return Labels([self._items[i] for i in picked])


@dataclass
class Targets:
    """The series a rule watches, sorted by id."""

    ids: np.ndarray  # int64
    server_ids: np.ndarray  # int64
    last_ts: np.ndarray  # float64, NaN: never
    last_value: np.ndarray  # float64
    labels: Sequence[dict[str, str]]

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, keep: np.ndarray) -> Targets:
        picked = np.flatnonzero(keep)
        labels = (
            self.labels.take(picked.tolist())
            if isinstance(self.labels, Labels)
            else [self.labels[i] for i in picked]
        )
        return Targets(
            self.ids[picked],
            self.server_ids[picked],
            self.last_ts[picked],
            self.last_value[picked],
            labels,
        )


def scope_servers(rule):
    """Servers in the rule's scope that may alert (not retired), as a queryset."""
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
    return qs


def scope_server_ids(rule) -> set[int]:
    """Ids of the servers in the rule's scope that may alert (not retired)."""
    return set(scope_servers(rule).values_list("pk", flat=True))


def targets(rule) -> Targets:
    matchers = parse_matchers(rule.matchers)
    # One query, the scope a subquery; labels come as text, decoded only
    # when a matcher needs them (see Labels). The newest sample comes from
    # the series row: most rules read nothing else.
    # Sorted here, not by the database: PostgreSQL's sort of 35,000 rows
    # spills out of the default work_mem.
    query = (
        Series.objects.filter(metric=rule.metric, server__in=scope_servers(rule).values("pk"))
        .annotate(labels_text=Cast("labels", TextField()))
        .order_by()
        .values_list("id", "server_id", "last_ts", "last_value", "labels_text")
    )
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        # The raw cursor: no per-row conversion of 35,000 rows by the ORM.
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    n = len(rows)
    if not n:
        return Targets(*(np.empty(0, dtype=t) for t in ("i8", "i8", "f8", "f8")), Labels([]))
    ids, server_ids, last_ts, last_value, texts = zip(*rows, strict=True)
    order = np.argsort(np.array(ids, dtype=np.int64), kind="stable")
    texts = [texts[i] for i in order.tolist()]
    found = Targets(
        np.array(ids, dtype=np.int64)[order],
        np.array(server_ids, dtype=np.int64)[order],
        np.array(last_ts, dtype=np.float64)[order],  # None becomes NaN
        np.array(last_value, dtype=np.float64)[order],
        Labels(texts),
    )
    if not matchers:
        return found
    # A few distinct label sets among many series (7 mount points over
    # 5,000 servers): each is decoded and matched once.
    verdicts: dict[str, bool] = {}
    for text in set(texts):
        verdicts[text] = labels_match(matchers, _decode(text))
    return found.take(np.fromiter((verdicts[t] for t in texts), dtype=bool, count=n))


def _decode(text) -> dict[str, str]:
    if isinstance(text, dict):
        return text
    return json.loads(text) if text else {}


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


def _watermark_1h() -> int | None:
    return state.get(state.ROLLUP_1H)


@dataclass(frozen=True)
class Piece:
    """Rows of one tier that cover [start, end) of a window: whole buckets of
    `width` seconds of a rollup table, or raw samples (width 0, end included)."""

    table: str
    width: int
    start: int
    end: int

    def rows_sql(self, origin: int, series: str, series_args: list) -> tuple[str, list]:
        """SELECT of (series_id, n, t, sv, lo, hi) rows of the series that the
        condition `series` (SQL ending in AND) picks: a bucket is n samples at
        its middle whose values add up to sv, a raw sample is one sample."""
        where = f"WHERE {series}ts >= %s AND ts <= %s"
        if self.width:
            return (
                "SELECT series_id, CAST(count AS DOUBLE PRECISION) AS n, "  # noqa: S608
                "CAST(ts + %s AS DOUBLE PRECISION) AS t, sum AS sv, min AS lo, max AS hi "
                f"FROM {self.table} {where}",
                [self.width // 2 - origin, *series_args, self.start, self.end - self.width],
            )
        # DOUBLE PRECISION throughout: PostgreSQL would sum 1.0 as numeric, slowly.
        return (
            "SELECT series_id, CAST(1 AS DOUBLE PRECISION) AS n, "  # noqa: S608
            "CAST(ts - %s AS DOUBLE PRECISION) AS t, value AS sv, value AS lo, value AS hi "
            f"FROM {self.table} {where}",
            [origin, *series_args, self.start, self.end],
        )


def pieces(start: int, end: int) -> list[Piece]:
    """The tiers that cover the window [start, end], oldest first.

    Closed 5-minute buckets before the 5-minute watermark, raw samples from
    it; over a long window, whole hours below the 1-hour watermark come from
    1-hour buckets, one row per series and hour instead of twelve. (A bucket
    that starts before `start` is left out, as a whole.)"""
    w5, w1h = _watermark_5m(), _watermark_1h()
    split = start if w5 is None else max(start, w5)
    out = []
    first_hour = -(-start // HOUR) * HOUR
    last_hour = first_hour if w1h is None else min(split // HOUR * HOUR, w1h)
    if last_hour - first_hour >= HOUR:
        out += [
            Piece("metrics_rollup5m", FIVE_MINUTES, start, first_hour),
            Piece("metrics_rollup1h", HOUR, first_hour, last_hour),
            Piece("metrics_rollup5m", FIVE_MINUTES, last_hour, split),
        ]
    else:
        out.append(Piece("metrics_rollup5m", FIVE_MINUTES, start, split))
    out.append(Piece("metrics_sample", 0, split, end))
    return [p for p in out if p.end - p.start >= p.width and (p.width or p.start <= p.end)]


# Per series: n, Σt, Σv, Σt², Σtv, min, max over its rows.
_SUMS = (
    "SUM(p.n), SUM(p.n * p.t), SUM(p.sv), SUM(p.n * p.t * p.t), SUM(p.sv * p.t), "
    "MIN(p.lo), MAX(p.hi)"
)


def _sums_rows(parts: list[Piece], ids: list[int], origin: int) -> list[list[tuple]]:
    """(series id, *_SUMS) of the series with rows in `parts`, in as few
    queries as the database allows, each seeking every series in the key."""
    if connection.vendor == "postgresql":
        # One query: per series id, one aggregate over an index scan per
        # piece. A LATERAL aggregate is never flattened into a hash join over
        # a scan of the table, and needs no GROUP BY over all the rows.
        selects, params = [], []
        for piece in parts:
            sql, args = piece.rows_sql(origin, "series_id = s.id AND ", [])
            selects.append(sql)
            params += args
        sql = (
            f"SELECT s.id, a.* FROM unnest(%s::int4[]) AS s(id) "  # noqa: S608
            f"CROSS JOIN LATERAL (SELECT {_SUMS} FROM ({' UNION ALL '.join(selects)}) p) a"
        )
        with transaction.atomic(savepoint=False), connection.cursor() as cursor:
            # Its cost estimate makes PostgreSQL JIT-compile the query, which
            # takes close to a second; the query itself, tens of milliseconds.
            cursor.execute("SET LOCAL jit = off")
            cursor.execute(sql, [ids, *params])
            return [cursor.fetchall()]
    # SQLite: a query per piece. It seeks the ids of the IN list in order,
    # so that GROUP BY needs no sort.
    out = []
    with connection.cursor() as cursor:
        for piece in parts:
            rows_sql, args = piece.rows_sql(
                origin, "series_id IN (SELECT value FROM json_each(%s)) AND ", [json.dumps(ids)]
            )
            cursor.execute(
                f"SELECT p.series_id, {_SUMS} FROM ({rows_sql}) p GROUP BY p.series_id",  # noqa: S608
                args,
            )
            out.append(cursor.fetchall())
    return out


def window_sums(metric: str, ids: np.ndarray, start: int, end: int) -> WindowSums:
    """Aggregates of the series `ids` (sorted) over [start, end]; `metric`
    is theirs. Series without samples in the window get n = 0 and NaN."""
    n = len(ids)
    # Columns n, Σt, Σv, Σt², Σtv (added up over the pieces), min, max.
    table = np.zeros((n, 7))
    table[:, 5:] = np.nan
    parts = pieces(start, end)
    for rows in _sums_rows(parts, ids.tolist(), start) if n and parts else []:
        if not rows:
            continue
        got = np.array(rows, dtype=np.float64)
        got = got[~np.isnan(got[:, 1])]  # no rows: SUM is NULL
        where = np.searchsorted(ids, got[:, 0].astype(np.int64))
        table[where, :5] += got[:, 1:6]
        table[where, 5] = np.fmin(table[where, 5], got[:, 6])
        table[where, 6] = np.fmax(table[where, 6], got[:, 7])
    table[table[:, 0] == 0, 1:5] = np.nan
    sums = Sums(table[:, 0], table[:, 1], table[:, 2], table[:, 3], table[:, 4], float(start))
    return WindowSums(sums, table[:, 5], table[:, 6])


def window_samples(ids: np.ndarray, start: int, end: int) -> Window:
    """Every raw sample of the series `ids` (sorted) in [start, end], as one Window."""
    compacted = state.get(state.COMPACTED)
    if compacted is not None and start >= compacted:
        # Nothing at or after the compaction watermark is in a block yet.
        return _hot_window(ids, start, end)
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


def _hot_window(ids: np.ndarray, start: int, end: int) -> Window:
    """The hot rows of the series in [start, end], in one query that seeks
    each series in the (series_id, ts) key, as window_sums does."""
    n = len(ids)
    rows: list[tuple] = []
    if n:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    "SELECT s.id, x.ts, x.value FROM unnest(%s::int4[]) AS s(id) "
                    "CROSS JOIN LATERAL (SELECT ts, value FROM metrics_sample "
                    "WHERE series_id = s.id AND ts >= %s AND ts <= %s OFFSET 0) x",
                    [ids.tolist(), start, end],
                )
            else:
                cursor.execute(
                    "SELECT series_id, ts, value FROM metrics_sample WHERE series_id IN "
                    "(SELECT value FROM json_each(%s)) AND ts >= %s AND ts <= %s",
                    [json.dumps(ids.tolist()), start, end],
                )
            rows = cursor.fetchall()
    if not rows:
        return Window(np.empty(0, dtype=np.int64), np.empty(0), np.zeros(n + 1, dtype=np.int64))
    # Ids and timestamps are exact in float64 (below 2**53).
    table = np.array(rows, dtype=np.float64)
    owner = np.searchsorted(ids, table[:, 0].astype(np.int64))
    ts = table[:, 1].astype(np.int64)
    # The rows come series after series, each in time order, as the loop
    # reads them; SQL promises no order without ORDER BY, so check.
    if len(ts) > 1 and not np.all(
        (np.diff(owner) > 0) | ((np.diff(owner) == 0) & (np.diff(ts) > 0))
    ):
        order = np.lexsort((ts, owner))
        owner, ts, table = owner[order], ts[order], table[order]
    offsets = np.concatenate(([0], np.cumsum(np.bincount(owner, minlength=n)))).astype(np.int64)
    return Window(ts, table[:, 2].copy(), offsets)
