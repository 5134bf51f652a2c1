"""Vigil's own ingest format (docs/ingest-json.md), sent by `vigil agent`.

{"host": "web-1",
 "series": [{"metric": "load1", "labels": {}, "points": [[1732500000, 0.42]]}]}
"""

from __future__ import annotations

import math

import orjson

from vigil.ingest.parsers.base import (
    MAX_FUTURE_SECONDS,
    MIN_TS,
    ParseError,
    ParseResult,
    SeriesPoints,
    check_host,
    check_labels,
    check_metric,
    check_ts,
    check_value,
)

_NUMBERS = {int, float}


def _valid_columns(points: list, now: float) -> tuple[list[int], list[float]] | None:
    """The points as columns when every one is valid, checked a column at a time.

    The common case costs a few C-level passes instead of a check per point;
    anything unusual returns None and the point-by-point path names the error.
    """
    if not points:
        return None
    try:
        if set(map(len, points)) != {2}:
            return None
        ts = [p[0] for p in points]
        values = [p[1] for p in points]
    except (TypeError, KeyError, IndexError):
        return None
    if not set(map(type, ts)) <= _NUMBERS or not set(map(type, values)) <= _NUMBERS:
        return None
    if min(ts) < MIN_TS or max(ts) > now + MAX_FUTURE_SECONDS:
        return None
    if not all(map(math.isfinite, ts)) or not all(map(math.isfinite, values)):
        return None
    return list(map(int, ts)), list(map(float, values))


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
        columns = _valid_columns(points, now)
        if columns is not None:
            result.series.append(SeriesPoints(host, metric, labels, *columns))
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
