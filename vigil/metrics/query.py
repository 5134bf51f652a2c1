"""Reading samples back: the query behind `GET /api/v1/query` and the charts.

Each series gets at most `max_points` points: the range is cut into equal
buckets and one query averages each bucket in the database, so a week of
10-second samples costs one grouped scan and a few hundred rows on the wire.
A bucket that holds one sample keeps its exact time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django.db import connection

from vigil.metrics.models import Series

MAX_POINTS_LIMIT = 10_000


@dataclass
class SeriesResult:
    server: str
    metric: str
    labels: dict[str, str]
    points: list[list[float]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "server": self.server,
            "metric": self.metric,
            "labels": self.labels,
            "points": self.points,
        }


@dataclass
class QueryResult:
    tier: str
    step: int
    series: list[SeriesResult]

    def as_dict(self) -> dict:
        return {"tier": self.tier, "step": self.step, "series": [s.as_dict() for s in self.series]}


def bucket_step(start: int, end: int, max_points: int) -> int:
    return max(1, math.ceil((end - start) / max_points))


def select_series(
    metric: str,
    servers: list[str] | None = None,
    location: str | None = None,
    labels: dict[str, str] | None = None,
) -> list[Series]:
    qs = Series.objects.filter(metric=metric).select_related("server")
    if servers:
        qs = qs.filter(server__name__in=servers)
    if location:
        qs = qs.filter(server__location__name=location)
    for name, value in (labels or {}).items():
        qs = qs.filter(**{f"labels__{name}": value})
    return list(qs.order_by("server__name", "labels_key"))


def run(
    metric: str,
    start: int,
    end: int,
    max_points: int,
    servers: list[str] | None = None,
    location: str | None = None,
    labels: dict[str, str] | None = None,
) -> QueryResult:
    """Samples of one metric in [start, end], at most max_points per series."""
    series = select_series(metric, servers, location, labels)
    step = bucket_step(start, end, max_points)
    results = {
        s.pk: SeriesResult(s.server.name, s.metric, dict(sorted(s.labels.items()))) for s in series
    }
    if results:
        placeholders = ",".join(["%s"] * len(results))
        # Only placeholders are formatted into the text; values go as parameters.
        sql = (
            "SELECT series_id, ts / %s AS bucket, MIN(ts), COUNT(*), AVG(value) "  # noqa: S608
            f"FROM metrics_sample WHERE series_id IN ({placeholders}) AND ts >= %s AND ts <= %s "
            "GROUP BY series_id, bucket ORDER BY series_id, bucket"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [step, *results, start, end])
            for series_id, bucket, first_ts, count, avg in cursor.fetchall():
                ts = first_ts if count == 1 else bucket * step
                results[series_id].points.append([int(ts), float(avg)])
    return QueryResult("raw", step, list(results.values()))
