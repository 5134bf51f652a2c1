"""A rule's condition over all of its series: values, breaches, recoveries.

Everything here is one array per rule: the loops are numpy's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vigil.alerts import evaluate as ev
from vigil.alerts import fetch
from vigil.alerts.fetch import Targets

# `last` looks no further back than this when the rule's window is shorter:
# a sample is current for a few agent intervals, not forever.
MIN_FRESH_SECONDS = 120
RECOVERY = {">": "<", ">=": "<", "<": ">", "<=": ">"}


@dataclass
class Measured:
    value: np.ndarray  # what the alert shows; NaN: no data in the window
    breaching: np.ndarray
    recovered: np.ndarray
    predicted: np.ndarray  # unix time the forecast reaches the limit; NaN: not forecast


def measure(
    rule, targets: Targets, now: int, cores: dict[int, float], down: np.ndarray
) -> Measured:
    """The rule's condition on each target series at `now`.

    `cores` maps server ids to CPU cores (for per-core rules); `down` holds
    the ids of servers that are down, whose series no-data rules ignore."""
    from vigil.alerts.models import Rule

    n = len(targets)
    predicted = np.full(n, np.nan)
    kind = rule.kind
    if kind == Rule.Kind.NO_DATA:
        with np.errstate(invalid="ignore"):
            age = np.where(np.isnan(targets.last_ts), np.inf, now - targets.last_ts)
        breaching = (age > rule.no_data_seconds) & ~np.isin(targets.server_ids, down)
        return Measured(age, breaching, ~breaching, predicted)
    if kind == Rule.Kind.HOST_DOWN:
        value = _last(targets, now, rule.window_seconds)
        breaching = ev.compare(value, "<", 1.0)
        return Measured(value, breaching, ev.compare(value, ">=", 1.0), predicted)

    start = now - rule.window_seconds
    if kind == Rule.Kind.RATE:
        sums = fetch.window_sums(rule.metric, targets.ids, start, now).sums
        value = ev.fit(sums)[0] * 60.0
    elif kind == Rule.Kind.FORECAST:
        sums = fetch.window_sums(rule.metric, targets.ids, start, now).sums
        slope, mean_v, mean_t = ev.fit(sums)
        value = mean_v + slope * (now - mean_t)  # the trend's value now
        at_horizon = value + slope * rule.forecast_seconds
        predicted = _crossing(value, slope, rule.threshold, now)
        breaching = ev.compare(at_horizon, rule.operator, rule.threshold)
        return Measured(value, breaching, ~breaching & ~np.isnan(at_horizon), predicted)
    else:
        value = aggregate(rule, targets, start, now)
    if rule.per_core:
        value = value / np.array([cores.get(int(s), np.nan) for s in targets.server_ids])
    breaching = ev.compare(value, rule.operator, rule.threshold)
    if rule.recovery_threshold is None:
        recovered = ~breaching & ~np.isnan(value)
    else:
        recovered = ev.compare(value, RECOVERY[rule.operator], rule.recovery_threshold)
    return Measured(value, breaching, recovered, predicted)


def aggregate(rule, targets: Targets, start: int, now: int) -> np.ndarray:
    how = rule.aggregation
    if how == "last":
        return _last(targets, now, rule.window_seconds)
    if how in ("avg", "min", "max"):
        sums = fetch.window_sums(rule.metric, targets.ids, start, now)
        return {"avg": sums.avg, "min": sums.low, "max": sums.high}[how]
    return ev.aggregate(fetch.window_samples(targets.ids, start, now), how)


def _last(targets: Targets, now: int, window: int) -> np.ndarray:
    """The newest sample of each series if it is recent enough, else NaN."""
    fresh = targets.last_ts >= now - max(window, MIN_FRESH_SECONDS)
    return np.where(fresh, targets.last_value, np.nan)


def _crossing(value: np.ndarray, slope: np.ndarray, level: float, now: int) -> np.ndarray:
    """When the trend reaches `level`, if it is heading there; NaN otherwise."""
    with np.errstate(invalid="ignore", divide="ignore"):
        left = (level - value) / slope
    left = np.where(value == level, 0.0, left)
    return np.where(np.isfinite(left) & (left >= 0), now + left, np.nan)
