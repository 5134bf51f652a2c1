"""Reading history back: the query behind `GET /api/v1/query` and the charts.

A query asks for one metric over [start, end] with at most `max_points`
points per series. It is answered from the finest tier that serves the range
within that count:

1. step = ceil((end - start) / max_points) picks raw (step < 5 min), 5-minute
   (step < 1 h) or 1-hour rollups; a tier whose retention does not reach back
   to `start` gives way to the next coarser one.
2. The step grows to a multiple of the tier's width, large enough that the
   buckets (aligned to the epoch, so that a refreshing chart keeps its points)
   number at most max_points.
3. Rollup tiers read the final buckets (before the tier's watermark) with one
   grouped SQL query for all series, and the recent tail that is not rolled up
   yet from the raw tier, so that a 30-day chart reaches "now".
4. Each bucket becomes a point (its average) with the bucket's min and max,
   so that a spike hidden by an average stays visible as an envelope.

The number of SQL queries does not depend on the number of series.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import orjson
from django.db import connection

from vigil.ingest.parsers.base import LABEL_NAME_RE
from vigil.metrics import raw, state
from vigil.metrics.buckets import Buckets, aggregate, combine, floor
from vigil.metrics.models import Retention, Series

MAX_POINTS_LIMIT = 10_000
MAX_SERIES = 1_000
MAX_REGEX_LENGTH = 1_000
DAY = 86_400


class QueryError(ValueError):
    """A query that cannot be answered as asked; the message says how to fix it."""


@dataclass(frozen=True)
class Tier:
    name: str
    width: int  # seconds of the stored buckets (1 for raw samples)
    table: str = ""
    watermark: str = ""


RAW = Tier("raw", 1)
ROLLUP_5M = Tier("5m", 300, "metrics_rollup5m", state.ROLLUP_5M)
ROLLUP_1H = Tier("1h", 3600, "metrics_rollup1h", state.ROLLUP_1H)
TIERS = (RAW, ROLLUP_5M, ROLLUP_1H)


@dataclass(frozen=True)
class Matcher:
    """A label matcher as Prometheus writes them: name=value, !=, =~ and !~.

    A series without the label matches as if its value were "" (as in
    Prometheus); regular expressions must match the whole value.
    """

    name: str
    op: str
    value: str
    pattern: re.Pattern | None = None

    @classmethod
    def parse(cls, text: str) -> Matcher:
        found = re.match(r"([^=!~]*)(=~|!~|!=|=)", text)
        if found is None:
            raise QueryError(
                f"match {text[:60]!r} is not a label matcher "
                "(name=value, name!=value, name=~regex or name!~regex)"
            )
        name, op = found.group(1).strip(), found.group(2)
        value = text[found.end() :]
        if not LABEL_NAME_RE.match(name):
            raise QueryError(f"{name[:40]!r} is not a label name ([A-Za-z_][A-Za-z0-9_]*)")
        pattern = None
        if op in ("=~", "!~"):
            if len(value) > MAX_REGEX_LENGTH:
                raise QueryError(f"the regular expression of {name} is too long")
            try:
                pattern = re.compile(value)
            except (re.error, RecursionError, OverflowError) as exc:
                raise QueryError(
                    f"bad regular expression {value[:60]!r} for {name}: {exc}"
                ) from None
        return cls(name, op, value, pattern)

    @classmethod
    def equal(cls, name: str, value: str) -> Matcher:
        if not LABEL_NAME_RE.match(name):
            raise QueryError(f"{name[:40]!r} is not a label name ([A-Za-z_][A-Za-z0-9_]*)")
        return cls(name, "=", value)

    def matches(self, labels: dict[str, str]) -> bool:
        value = labels.get(self.name, "")
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        hit = self.pattern.fullmatch(value) is not None
        return hit if self.op == "=~" else not hit


@dataclass
class SeriesResult:
    server: str
    metric: str
    labels: dict[str, str]
    points: list = field(default_factory=list)  # [(unix seconds, average), ...]
    min: list | None = None
    max: list | None = None

    def as_dict(self) -> dict:
        out = {
            "server": self.server,
            "metric": self.metric,
            "labels": self.labels,
            "points": self.points,
        }
        if self.min is not None:
            out["min"] = self.min
            out["max"] = self.max
        return out


@dataclass
class QueryResult:
    tier: str
    step: int
    series: list[SeriesResult]

    def as_dict(self) -> dict:
        return {"tier": self.tier, "step": self.step, "series": [s.as_dict() for s in self.series]}

    def to_json(self) -> bytes:
        return orjson.dumps(self.as_dict())


# --- Pure arithmetic: which tier, which step, which points -------------------


def choose_tier(
    start: int, end: int, max_points: int, now: int, retention_days: Sequence[int]
) -> tuple[Tier, int]:
    """The tier and the bucket width that answer [start, end] in max_points.

    retention_days holds the days kept by raw, 5-minute and 1-hour tiers. A
    tier is skipped when its retention ends after start by more than one step:
    a chart asking for exactly "the last 7 days" a moment after its clock read
    "now" is still served by a tier that keeps 7 days, and at worst its first
    point is partial.
    """
    wanted = max(1, math.ceil((end - start) / max_points))
    index = 0 if wanted < ROLLUP_5M.width else 1 if wanted < ROLLUP_1H.width else 2
    while index < len(TIERS) - 1 and now - retention_days[index] * DAY > start + wanted:
        index += 1
    tier = TIERS[index]
    return tier, fit_step(start, end, max_points, tier.width, wanted)


def bucket_count(start: int, end: int, step: int) -> int:
    """How many epoch-aligned buckets of `step` seconds [start, end] touches."""
    return end // step - start // step + 1


def fit_step(start: int, end: int, max_points: int, unit: int, wanted: int) -> int:
    """The smallest multiple of unit, at least wanted, whose buckets over
    [start, end] number at most max_points (the next few multiples are tried,
    then a width that is sure to fit)."""
    step = max(unit, -(-wanted // unit) * unit)
    for _ in range(8):
        if bucket_count(start, end, step) <= max_points:
            return step
        step += unit
    if max_points > 1:
        # At most ceil((end - start) / step) + 1 buckets touch the range.
        sure = -(-(end - start) // (max_points - 1))
        return max(step, -(-sure // unit) * unit)
    # One point over a range that straddles a bucket boundary: the newest
    # bucket is kept (see points_of).
    return step


def points_of(
    b: Buckets, stamps: np.ndarray, max_points: int, envelope: bool
) -> tuple[list, list | None, list | None]:
    """Points [(ts, avg), ...] and, with an envelope, min and max aligned with them."""
    if len(b) > max_points:
        b, stamps = b.select(slice(len(b) - max_points, None)), stamps[-max_points:]
    points = list(zip(stamps.tolist(), b.avg.tolist(), strict=True))
    if not envelope:
        return points, None, None
    return points, b.min.tolist(), b.max.tolist()


# --- Reading the database -----------------------------------------------------


@dataclass
class Selected:
    id: int
    server: str
    labels: dict[str, str]


def select_series(
    metric: str,
    servers: Sequence[str] = (),
    location: str | None = None,
    matchers: Sequence[Matcher] = (),
    limit: int | None = None,
) -> list[Selected]:
    """The series of one metric on the chosen servers whose labels match, in
    the order of server name and labels. More than `limit` is a QueryError."""
    limit = MAX_SERIES if limit is None else limit
    qs = Series.objects.filter(metric=metric)
    if servers:
        qs = qs.filter(server__name__in=list(servers))
    if location:
        qs = qs.filter(server__location__name=location)
    # Label matchers run here rather than in SQL: the same code on both
    # databases, and regular expressions with Python's (anchored) semantics.
    rows = qs.order_by("server__name", "labels_key").values_list("id", "server__name", "labels")
    found = [
        Selected(sid, name, labels)
        for sid, name, labels in rows
        if all(m.matches(labels) for m in matchers)
    ]
    if len(found) > limit:
        raise QueryError(
            f"{len(found)} series match, more than {limit}: narrow the query with "
            "server=, location= or match= (e.g. match=mountpoint=/)"
        )
    return found


def _placeholders(n: int) -> str:
    return ",".join(["%s"] * n)


def read_rollups(
    tier: Tier, series_ids: Sequence[int], lo: int, hi: int, before: int, step: int
) -> dict[int, Buckets]:
    """Stored buckets of the tier with lo <= ts <= hi and ts < before, already
    combined into buckets of `step` seconds in the database (fewer rows on the
    wire), per series. `last` is not read: points do not use it."""
    if not series_ids or lo > min(hi, before - 1):
        return {}
    # Only placeholders and the tier's own table name are formatted into the
    # text; values go as parameters.
    sql = (
        f"SELECT series_id, ts / %s, MIN(ts), MIN(min), MAX(max), SUM(sum), SUM(count) "  # noqa: S608
        f"FROM {tier.table} WHERE series_id IN ({_placeholders(len(series_ids))}) "
        "AND ts >= %s AND ts <= %s AND ts < %s GROUP BY 1, 2 ORDER BY 1, 2"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [step, *series_ids, lo, hi, before])
        rows = cursor.fetchall()
    return {sid: b for sid, (b, _) in raw.grouped_buckets(rows, step).items()}


def _watermark(tier: Tier) -> int | None:
    return state.get(tier.watermark)


def run(
    metric: str,
    start: int,
    end: int,
    max_points: int,
    servers: Sequence[str] = (),
    location: str | None = None,
    matchers: Sequence[Matcher] = (),
    now: int | None = None,
) -> QueryResult:
    """Points of one metric in [start, end], at most max_points per series.

    1. Select the series (one query) and choose tier and step (retention: one query).
    2. Raw tier: read the samples of every series (raw.read) and bucket them.
    3. Rollup tiers: one grouped query for the final buckets before the
       watermark, raw.read for the tail after it, merged per bucket.
    """
    selected = select_series(metric, servers, location, matchers)
    now = int(time.time()) if now is None else now
    retention = Retention.current()
    days = (retention.raw_days, retention.rollup_5m_days, retention.rollup_1h_days)
    tier, step = choose_tier(start, end, max_points, now, days)
    results = [SeriesResult(s.server, metric, dict(sorted(s.labels.items()))) for s in selected]
    if not selected:
        return QueryResult(tier.name, step, results)
    ids = [s.id for s in selected]
    if tier is RAW:
        found = raw.read_buckets(ids, start, end, step)
        empty = (Buckets.empty(), np.empty(0, dtype=np.int64))
        for s, result in zip(selected, results, strict=True):
            b, stamps = found.get(s.id, empty)
            envelope = bool(len(b)) and bool((b.count > 1).any())
            result.points, result.min, result.max = points_of(b, stamps, max_points, envelope)
        return QueryResult(tier.name, step, results)

    lo = int(floor(start, step))
    watermark = _watermark(tier)
    # Buckets before the watermark are final; one that the watermark cuts
    # through counts as rolled up, so the raw tail starts after it.
    tail_start = lo if watermark is None else max(lo, -(-watermark // tier.width) * tier.width)
    stored = read_rollups(tier, ids, lo, end, tail_start, step)
    tail = raw.read(ids, tail_start, end) if tail_start <= end else {}
    for s, result in zip(selected, results, strict=True):
        parts = [p for p in (stored.get(s.id), _tail_buckets(tail.get(s.id), step)) if p]
        b = parts[0] if len(parts) == 1 else combine(_concat(parts), step) if parts else None
        if b is None:
            result.points = []
            continue
        result.points, result.min, result.max = points_of(b, b.ts, max_points, envelope=True)
    return QueryResult(tier.name, step, results)


def _tail_buckets(points: raw.Points | None, step: int) -> Buckets | None:
    if points is None or len(points[0]) == 0:
        return None
    return aggregate(points[0], points[1], step)


def _concat(parts: list[Buckets]) -> Buckets:
    return Buckets(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in Buckets.__dataclass_fields__)
    )
