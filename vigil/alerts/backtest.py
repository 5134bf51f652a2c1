"""Backtesting a rule before it is saved: "over the last 7 days it would have
fired N times, on these servers, at these times".

The live engine evaluates every rule every 30 s against the newest samples.
Replaying that sample by sample over a week would read millions of rows, so
the backtest reads the stored history tiers instead, in buckets of `step`
seconds (5 minutes for 7 days, 1 minute for a day), and replays the rule on
them (the arithmetic is in backtest_replay.py):

1. `fetch.targets` picks the rule's series, as the engine does (scope and
   label matchers; an unsaved rule works if its foreign keys are set).
2. A chunk of series at a time, the bucket fields the rule needs are read
   into a (time x series) matrix: 5-minute or 1-hour rollups before the
   rollup watermark, raw samples after it (the query API's tiers).
3. The condition is computed for every bucket and series at once: the
   aggregate over the rule's window (avg, min, max from the buckets of the
   window), the slope or forecast of a least-squares line through them, the
   age of the newest data for no-data rules, the `up` metric for host-down.
4. The pure state machine `evaluate.step` runs over the time columns, one
   call per column for the whole chunk, and every firing interval becomes
   an `Episode`.

Where it approximates the live engine (the error is about one step):
- Time has the resolution of a step. A column stands for its bucket
  [t, t + step): a breach seen in a bucket counts from the bucket's start,
  and `for_seconds` is held once the breaching buckets span it. A breach
  shorter than a bucket shows only through the bucket's aggregate.
- `last` is the average of the newest bucket (the engine takes the newest
  sample): a spike within a bucket is averaged away, a value held for a
  whole bucket is exact. Percentiles (pNN) are estimated from the window's
  min, average and max (p0 = min, p50 = average, p100 = max, linear in
  between). A window shorter than a step widens to one step; rates and
  forecasts fit at least two buckets, each weighted by its count at its
  middle.
- `for_evaluations` becomes the time that many evaluations take at the
  engine's interval. Every series starts ok at the beginning of the range.
- Per-core rules divide by today's core counts. No-data rules skip servers
  whose `up` was below 1; other rules ignore down servers when they decide
  that a silent series is gone. Location outages, silences, flapping and
  notifications are not replayed: the backtest counts firings, not messages.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from django.conf import settings
from django.db import connection

from vigil.alerts import backtest_replay as rp
from vigil.alerts import evaluate as ev
from vigil.alerts import fetch
from vigil.alerts.conditions import MIN_FRESH_SECONDS
from vigil.metrics import query, raw
from vigil.metrics.models import Retention, Series
from vigil.servers.models import Server

MAX_SERIES = 2000
MAX_DAYS = 90
MAX_EPISODES = 1000
CHARTS = 5
# About a week of 5-minute buckets: the number of evaluations replayed.
COLUMNS = 2016
STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
# Cells (columns x series) read and replayed together: a few MB per array,
# however long the rule's window makes the read.
CHUNK_CELLS = 1_000_000
DAY = 86_400
AGGREGATES = {"count": "SUM(count)", "sum": "SUM(sum)", "min": "MIN(min)", "max": "MAX(max)"}


@dataclass
class Episode:
    server: str
    labels: dict[str, str]
    fired_at: int
    resolved_at: int | None  # None: still firing at the end of the range
    value: float | None  # the rule's value when it fired


@dataclass
class ChartSeries:
    server: str
    labels: dict[str, str]
    points: list[list] = field(default_factory=list)  # [[unix seconds, average], ...]


@dataclass
class BacktestResult:
    fired: int  # firing episodes in the range, all of them
    series: int  # series evaluated
    step: int  # seconds between simulated evaluations
    seconds: float  # time the backtest took
    episodes: list[Episode]  # the most recent MAX_EPISODES, oldest first
    charts: list[ChartSeries]  # the metric of the series that fired most

    def as_dict(self) -> dict:
        return asdict(self)


def choose_step(days: int, retention: tuple[int, int, int]) -> tuple[query.Tier, int]:
    """The tier and bucket width that replay `days` in about COLUMNS steps,
    from a tier whose retention reaches back that far."""
    wanted = max(settings.ALERT_EVALUATION_INTERVAL_SECONDS, math.ceil(days * DAY / COLUMNS))
    step = next((s for s in STEPS if s >= wanted), STEPS[-1])
    raw_days, days_5m, _ = retention
    if step < query.ROLLUP_5M.width and days < raw_days:
        return query.RAW, step
    step = max(step, query.ROLLUP_5M.width)
    if days < days_5m:
        return query.ROLLUP_5M, step
    return query.ROLLUP_1H, -(-step // 3600) * 3600


# --- Reading the database -----------------------------------------------------


@dataclass(frozen=True)
class Span:
    """The columns read: m buckets of `step` seconds from `lo` to `hi`."""

    tier: query.Tier
    lo: int
    hi: int
    step: int
    m: int
    tail_start: int  # the raw tier answers from here on


def _stored(span: Span, ids: list[int], wanted: tuple[str, ...]) -> np.ndarray:
    """Rows (series, bucket start, *wanted) of the rollup tier before the
    watermark. At the tier's own width the rows are read as stored (no
    grouping), and only the fields the rule needs cross the wire."""
    tier, step = span.tier, span.step
    hi = min(span.hi, span.tail_start - 1)
    if tier is query.RAW or span.lo > hi:
        return np.empty((0, 2 + len(wanted)))
    marks = ",".join(["%s"] * len(ids))
    # Only placeholders, the tier's own table and our own field names are
    # formatted into the text; values go as parameters.
    if step == tier.width:
        sql = (
            f"SELECT series_id, ts, {', '.join(wanted)} FROM {tier.table} "  # noqa: S608
            f"WHERE series_id IN ({marks}) AND ts >= %s AND ts <= %s"
        )
        params = [*ids, span.lo, hi]
    else:
        sql = (
            f"SELECT series_id, ts / %s, {', '.join(AGGREGATES[f] for f in wanted)} "  # noqa: S608
            f"FROM {tier.table} WHERE series_id IN ({marks}) AND ts >= %s AND ts <= %s "
            "GROUP BY 1, 2"
        )
        params = [step, *ids, span.lo, hi]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    table = np.array(rows, dtype=np.float64).reshape(len(rows), 2 + len(wanted))
    if step != tier.width:
        table[:, 1] *= step
    return table


def read_matrix(ids: list[int], span: Span, wanted: tuple[str, ...]) -> rp.Matrix:
    """The buckets of `step` seconds of the series over the span, as a
    (column x series) matrix of the wanted fields (count always)."""
    m, n = span.m, len(ids)
    arrays = {f: np.zeros((m, n)) if f == "count" else np.full((m, n), np.nan) for f in wanted}
    if not ids:
        return rp.Matrix(**arrays)
    position = {sid: i for i, sid in enumerate(ids)}
    table = _stored(span, ids, wanted)
    if len(table):
        rows = np.array([position[int(s)] for s in table[:, 0]], dtype=np.int64)
        cols = ((table[:, 1].astype(np.int64) - span.lo) // span.step).astype(np.int64)
        for k, f in enumerate(wanted):
            arrays[f][cols, rows] = table[:, 2 + k]
    if span.tail_start <= span.hi:
        # The recent tail, merged into a column that a stored bucket began.
        tail = raw.read_buckets(ids, span.tail_start, span.hi, span.step)
        for sid, (b, _) in tail.items():
            i = position[sid]
            cols = (b.ts - span.lo) // span.step
            keep = (cols >= 0) & (cols < m)
            cols = cols[keep]
            old = arrays["count"][cols, i]
            arrays["count"][cols, i] = old + b.count[keep]
            for f, how in (("sum", np.add), ("min", np.fmin), ("max", np.fmax)):
                if f in arrays:
                    known = arrays[f][cols, i]
                    new = getattr(b, f)[keep]
                    arrays[f][cols, i] = np.where(old > 0, how(known, new), new)
    return rp.Matrix(**arrays)


def _span(days: int, now: int, rule) -> tuple[Span, int]:
    """What to read for the rule, and the first replayed column: the columns
    before it fill the first windows and the age of silent series."""
    retention = Retention.current()
    tier, step = choose_step(
        days, (retention.raw_days, retention.rollup_5m_days, retention.rollup_1h_days)
    )
    first_ts = -(-(now - days * DAY) // step) * step
    window = max(rule.window_seconds, MIN_FRESH_SECONDS, 2 * step)
    if rule.kind == "no_data":
        window = max(window, rule.no_data_seconds + step)
    warm = math.ceil(window / step)
    lo = first_ts - warm * step
    if tier is query.RAW:
        tail_start = lo
    else:
        watermark = query._watermark(tier)
        tail_start = lo if watermark is None else max(lo, -(-watermark // tier.width) * tier.width)
    return Span(tier, lo, now, step, (now - lo) // step + 1, tail_start), warm


def _down(server_ids: np.ndarray, span: Span) -> np.ndarray:
    """Per column and series, whether the series' server had `up` below 1."""
    ups = dict(
        Series.objects.filter(metric="up", server_id__in=set(server_ids.tolist())).values_list(
            "server_id", "id"
        )
    )
    out = np.zeros((span.m, len(server_ids)), dtype=bool)
    if not ups:
        return out
    servers = sorted(ups)
    mx = read_matrix([ups[s] for s in servers], span, ("count", "sum"))
    with np.errstate(invalid="ignore"):
        down = mx.avg < 1.0
    where = {s: i for i, s in enumerate(servers)}
    picked = np.array([where.get(int(s), -1) for s in server_ids], dtype=np.int64)
    out[:, picked >= 0] = down[:, picked[picked >= 0]]
    return out


def _cores(server_ids: np.ndarray) -> np.ndarray:
    found = dict(
        Series.objects.filter(
            metric="cpu_cores", last_value__gt=0, server_id__in=set(server_ids.tolist())
        ).values_list("server_id", "last_value")
    )
    return np.array([found.get(int(s), np.nan) for s in server_ids], dtype=np.float64)


# --- The backtest -------------------------------------------------------------


def check(rule) -> None:
    """What the backtest needs of a rule, as ValueError (the form or the API
    validates the rest)."""
    if not rule.metric:
        raise ValueError("the rule names no metric")
    needs_threshold = rule.kind in ("threshold", "rate", "forecast")
    if needs_threshold and (rule.threshold is None or rule.operator not in ev.OPERATORS):
        raise ValueError("the rule needs an operator and a threshold")
    if rule.kind == "threshold" and not rp.known_aggregation(rule.aggregation):
        raise ValueError(
            f"unknown aggregation {rule.aggregation!r}: use last, avg, min, max or p95"
        )


def backtest(rule, days: int = 7, now: int | None = None) -> BacktestResult:
    """How often `rule` (saved or not) would have fired over the last `days`.

    1. Select the rule's series; refuse more than MAX_SERIES.
    2. Per chunk of series: read the matrix (and `up` for no-data rules),
       compute the condition, replay the state machine, keep the episodes.
    3. Chart the metric of the CHARTS series that fired most (or came closest).
    """
    began = time.perf_counter()
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS}")
    if rule.kind == "host_down":
        rule.metric = "up"
    check(rule)
    now = int(time.time()) if now is None else int(now)
    targets = fetch.targets(rule)
    n = len(targets)
    if n > MAX_SERIES:
        raise ValueError(
            f"this rule matches {n} series, more than {MAX_SERIES}: narrow it with a "
            "scope or label matchers (e.g. mountpoint=/) to backtest it"
        )
    span, warm = _span(days, now, rule)
    if n == 0:
        return BacktestResult(0, 0, span.step, round(time.perf_counter() - began, 4), [], [])
    stamps = span.lo + span.step * np.arange(span.m, dtype=np.int64)
    wanted = rp.fields(rule)
    interval = settings.ALERT_EVALUATION_INTERVAL_SECONDS
    gone_after = settings.ALERT_SERIES_GONE_AFTER_SECONDS
    found: list[tuple[int, int, int | None, float]] = []
    breaching = np.zeros(n, dtype=np.int64)
    peak = np.full(n, -np.inf)
    chunk = max(1, CHUNK_CELLS // span.m)
    for at in range(0, n, chunk):
        part = slice(at, at + chunk)
        ids, server_ids = targets.ids[part].tolist(), targets.server_ids[part]
        mx = read_matrix(ids, span, wanted)
        down = _down(server_ids, span) if rule.kind == "no_data" else None
        cores = _cores(server_ids) if rule.per_core else np.ones(len(ids))
        cond = rp.condition(rule, mx, stamps, span.step, cores, down)
        episodes = rp.replay(rule, cond, stamps, span.step, warm, interval, gone_after)
        found.extend((at + i, *rest) for i, *rest in episodes.found)
        breaching[part] = episodes.breaching
        peak[part] = _peak(rule, cond.value[warm:])
    found.sort(key=lambda e: (e[1], e[0]))

    names = dict(
        Server.objects.filter(pk__in=set(targets.server_ids.tolist())).values_list("pk", "name")
    )

    def server(i: int) -> str:
        return names.get(int(targets.server_ids[i]), "?")

    episodes = [
        Episode(server(i), dict(targets.labels[i]), fired, resolved, _number(v))
        for i, fired, resolved, v in found[-MAX_EPISODES:]
    ]
    fired_per_series = np.bincount(np.array([e[0] for e in found], dtype=np.int64), minlength=n)
    charted = np.lexsort((np.arange(n), -peak, -breaching, -fired_per_series))[:CHARTS].tolist()
    mx = read_matrix(targets.ids[charted].tolist(), span, ("count", "sum"))
    charts = [
        ChartSeries(server(i), dict(targets.labels[i]), _points(mx, stamps, k, warm))
        for k, i in enumerate(charted)
    ]
    seconds = round(time.perf_counter() - began, 4)
    return BacktestResult(len(found), n, span.step, seconds, episodes, charts)


def _peak(rule, values: np.ndarray) -> np.ndarray:
    """How close each series came to breaching: its highest value (lowest for
    < and <=, and for `up`), -inf without data. fmax and fmin skip NaN
    without a warning."""
    if rule.kind == "host_down" or rule.operator in ("<", "<="):
        peak = -np.fmin.reduce(values, axis=0)
    else:
        peak = np.fmax.reduce(values, axis=0)
    return np.nan_to_num(peak, nan=-np.inf)


def _points(mx: rp.Matrix, stamps: np.ndarray, k: int, first: int) -> list[list]:
    present = mx.count[first:, k] > 0
    ts = stamps[first:][present].tolist()
    values = mx.avg[first:, k][present].tolist()
    return [[t, v] for t, v in zip(ts, values, strict=True)]


def _number(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else value
