"""Vigil's own ingest format (docs/ingest-json.md), sent by `vigil agent`.

{"host": "web-1",
 "series": [{"metric": "load1", "labels": {}, "points": [[1732500000, 0.42]]}]}
"""

from __future__ import annotations

import orjson

from vigil.ingest.parsers.base import (
    ParseError,
    ParseResult,
    SeriesPoints,
    check_host,
    check_labels,
    check_metric,
    check_ts,
    check_value,
)


def parse(body: bytes, now: float) -> ParseResult:
    """Parse one request body; invalid series and points are rejected one by one."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ParseError('body must be a JSON object with "series"')
    host = doc.get("host")
    if host is not None:
        try:
            host = check_host(host)
        except ValueError as exc:
            raise ParseError(str(exc)) from None
    series = doc.get("series")
    if not isinstance(series, list):
        raise ParseError('"series" must be a list')

    result = ParseResult()
    for i, item in enumerate(series):
        where = f"series[{i}]"
        if not isinstance(item, dict):
            result.reject(f"{where}: must be an object")
            continue
        points = item.get("points")
        if not isinstance(points, list):
            result.reject(f'{where}: "points" must be a list of [timestamp, value]')
            continue
        try:
            metric = check_metric(item.get("metric"))
            labels = check_labels(item.get("labels"))
        except ValueError as exc:
            result.reject(f"{where}: {exc}", max(len(points), 1))
            continue
        timestamps: list[int] = []
        values: list[float] = []
        for j, point in enumerate(points):
            try:
                if not isinstance(point, list) or len(point) != 2:
                    raise ValueError("must be [timestamp, value]")
                ts = check_ts(point[0], now)
                value = check_value(point[1])
            except ValueError as exc:
                result.reject(f"{where}.points[{j}]: {exc}")
                continue
            timestamps.append(ts)
            values.append(value)
        if timestamps:
            result.series.append(SeriesPoints(host, metric, labels, timestamps, values))
    return result
