"""Replaying a rule over bucketed history: the pure half of the backtest.

A `Matrix` holds the buckets (count, sum, min, max) of n series over m
columns of `step` seconds, shape (m, n) so that a column, one simulated
evaluation, is contiguous. `condition` computes the rule's value, breach and
recovery for every cell at once; `replay` runs the state machine
`evaluate.step` over the columns, all series per call, and returns the
firing episodes. No database here: backtest.py reads, this computes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vigil.alerts import evaluate as ev
from vigil.alerts.conditions import MIN_FRESH_SECONDS, RECOVERY


@dataclass
class Matrix:
    """Buckets of n series over m columns, shape (m, n). Empty buckets have
    count 0 and NaN; a field the rule does not need is None (not read)."""

    count: np.ndarray
    sum: np.ndarray | None = None
    min: np.ndarray | None = None
    max: np.ndarray | None = None

    @property
    def avg(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sum / self.count


def columns(k: int, m: int) -> np.ndarray:
    """For each column j, the first column of its window of k: max(0, j - k + 1)."""
    return np.maximum(np.arange(m) - k + 1, 0)


def rolling_sum(x: np.ndarray, k: int) -> np.ndarray:
    """Sum over the last k rows (fewer at the top), for every column at once."""
    if k <= 1:
        return x
    total = np.concatenate((np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)))
    return total[1:] - total[columns(k, len(x))]


def rolling_extreme(x: np.ndarray, k: int, how: np.ufunc) -> np.ndarray:
    """Minimum or maximum over the last k rows (how = np.minimum or np.maximum),
    in linear time: prefix and suffix runs within blocks of k (van Herk)."""
    m = len(x)
    if k <= 1 or m == 0:
        return x
    fill = np.inf if how is np.minimum else -np.inf
    padded = -(-m // k) * k
    y = np.full((padded, x.shape[1]), fill)
    y[:m] = x
    blocks = y.reshape(padded // k, k, x.shape[1])
    prefix = how.accumulate(blocks, axis=1).reshape(padded, x.shape[1])
    suffix = how.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].reshape(padded, x.shape[1])
    out = prefix[:m].copy()
    j = np.arange(m)
    lo = columns(k, m)
    # A window inside one block is the block's prefix; one across two blocks
    # joins the older block's suffix and the newer one's prefix.
    split = (lo // k) != (j // k)
    out[split] = how(suffix[lo[split]], prefix[j[split]])
    return out


def newest_index(present: np.ndarray) -> np.ndarray:
    """Index of the newest row with data at or before each row, -1 if none."""
    marks = np.where(present, np.arange(len(present))[:, None], -1)
    return np.maximum.accumulate(marks, axis=0) if len(present) else marks


def fields(rule) -> tuple[str, ...]:
    """The bucket fields the rule's condition reads (count always)."""
    if rule.kind == "no_data":
        return ("count",)
    if rule.kind == "threshold" and rule.aggregation in ("min", "max"):
        return ("count", rule.aggregation)
    if rule.kind == "threshold" and rule.aggregation.startswith("p"):
        return ("count", "sum", "min", "max")
    return ("count", "sum")


@dataclass
class Condition:
    value: np.ndarray  # (m, n): what the alert would show
    breaching: np.ndarray
    recovered: np.ndarray
    age: np.ndarray  # seconds since the newest data; NaN before the first


def condition(
    rule, mx: Matrix, stamps: np.ndarray, step: int, cores: np.ndarray, down: np.ndarray | None
) -> Condition:
    """The rule's condition on every (column, series) of the matrix. `stamps`
    are the columns' start times, `cores` the CPU cores of each series'
    server, `down` whether its server was down in each column (no-data rules)."""
    present = mx.count > 0
    newest = newest_index(present)
    with np.errstate(invalid="ignore"):
        # A bucket's samples count as reaching its end.
        seen = np.where(newest >= 0, stamps[np.maximum(newest, 0)] + step, np.nan)
        age = np.maximum(stamps[:, None] - seen, 0.0)
    if rule.kind == "no_data":
        breaching = ~np.isnan(age) & (age > rule.no_data_seconds)
        if down is not None:
            breaching &= ~down
        return Condition(age, breaching, ~breaching, age)
    if rule.kind == "host_down":
        value = last(mx, newest, rule.window_seconds, step)
        breaching = ev.compare(value, "<", 1.0)
        return Condition(value, breaching, ev.compare(value, ">=", 1.0), age)

    k = max(1, math.ceil(rule.window_seconds / step))
    if rule.kind in ("rate", "forecast"):
        slope, level = trend(mx, max(2, k), step)
        if rule.kind == "forecast":
            at_horizon = level + slope * rule.forecast_seconds
            breaching = ev.compare(at_horizon, rule.operator, rule.threshold)
            return Condition(level, breaching, ~breaching & ~np.isnan(at_horizon), age)
        value = slope * 60.0
    else:
        value = aggregate(mx, rule.aggregation, k, newest, rule.window_seconds, step)
    if rule.per_core:
        value = value / cores[None, :]
    breaching = ev.compare(value, rule.operator, rule.threshold)
    if rule.recovery_threshold is None:
        recovered = ~breaching & ~np.isnan(value)
    else:
        recovered = ev.compare(value, RECOVERY[rule.operator], rule.recovery_threshold)
    return Condition(value, breaching, recovered, age)


def last(mx: Matrix, newest: np.ndarray, window: int, step: int) -> np.ndarray:
    """The average of the newest bucket if it is recent enough, else NaN."""
    fresh = max(1, math.ceil(max(window, MIN_FRESH_SECONDS) / step))
    rows = np.arange(len(newest))[:, None]
    ok = (newest >= 0) & (rows - newest < fresh)
    picked = np.take_along_axis(mx.avg, np.maximum(newest, 0), axis=0)
    return np.where(ok, picked, np.nan)


def known_aggregation(how: str) -> bool:
    return how in ev.AGGREGATIONS or (
        how.startswith("p") and how[1:].isdigit() and 0 <= int(how[1:]) <= 100
    )


def aggregate(mx: Matrix, how: str, k: int, newest: np.ndarray, window: int, step: int):
    """The aggregate of the window of k buckets ending at each column;
    percentiles are estimated from the window's min, average and max."""
    if how == "last":
        return last(mx, newest, window, step)
    n = rolling_sum(mx.count, k)
    empty = n == 0
    if how in ("min", "max") or how.startswith("p"):
        low = high = None
        if mx.min is not None:
            low = rolling_extreme(np.where(mx.count > 0, mx.min, np.inf), k, np.minimum)
            low = np.where(empty, np.nan, low)
        if mx.max is not None:
            high = rolling_extreme(np.where(mx.count > 0, mx.max, -np.inf), k, np.maximum)
            high = np.where(empty, np.nan, high)
        if how == "min":
            return low
        if how == "max":
            return high
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = np.where(empty, np.nan, rolling_sum(np.nan_to_num(mx.sum), k) / n)
    if how == "avg":
        return avg
    if how != "avg" and known_aggregation(how):
        q = int(how[1:]) / 100
        if q <= 0.5:
            return low + (avg - low) * (q / 0.5)
        return avg + (high - avg) * ((q - 0.5) / 0.5)
    raise ValueError(f"unknown aggregation {how!r}: use last, avg, min, max or p0-p100")


def trend(mx: Matrix, k: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares line through the window of k buckets ending at each
    column, each bucket weighted by its count at its middle: the slope per
    second and the line's value at the end of the column's bucket.

    Times are counted in steps from column 0, so that the count-weighted
    sums are exact integers and the window sums subtract without loss."""
    i = np.arange(len(mx.count), dtype=np.float64)[:, None]
    n = mx.count.astype(np.float64)
    sv = np.nan_to_num(mx.sum)
    total_n, s_i, s_v, s_ii, s_iv = (rolling_sum(x, k) for x in (n, n * i, sv, n * i * i, sv * i))
    # Move the origin to each window's own last column j (= i here): u = i - j.
    st = s_i - i * total_n
    stt = s_ii - 2 * i * s_i + i * i * total_n
    stv = s_iv - i * s_v
    # Bucket middles in seconds from the end of bucket j: (u - 1/2) * step.
    st_s = (st - 0.5 * total_n) * step
    stt_s = (stt - st + 0.25 * total_n) * step * step
    stv_s = (stv - 0.5 * s_v) * step
    slope, mean_v, mean_t = ev.fit(ev.Sums(total_n, st_s, s_v, stt_s, stv_s, 0.0))
    return slope, mean_v - slope * mean_t


@dataclass
class Episodes:
    found: list[tuple[int, int, int | None, float]]  # (series index, fired, resolved, value)
    breaching: np.ndarray  # columns in breach, per series


def replay(
    rule,
    cond: Condition,
    stamps: np.ndarray,
    step: int,
    first: int,
    interval: int,
    gone_after: int,
) -> Episodes:
    """Run the state machine over columns first..m-1 for all series at once.

    Mirrors the engine, evaluating every `interval` seconds: a firing series
    silent for `gone_after` seconds is gone (its episode ends) and stays gone
    until data returns. A column stands for its whole bucket, so a breach in
    it has held for a step by the column's end."""
    m, n = cond.breaching.shape
    held_for = max(rule.for_seconds, (max(1, rule.for_evaluations) - 1) * interval)
    for_seconds = max(0, held_for - step)
    with np.errstate(invalid="ignore"):
        vanished = (cond.age > gone_after) & (np.isnan(cond.value) | (rule.kind == "no_data"))
    if rule.kind == "host_down":
        vanished[:] = False
    states = ev.States.new(n)
    gone = np.zeros(n, dtype=bool)
    open_at: dict[int, tuple[int, float]] = {}
    found: list[tuple[int, int, int | None, float]] = []
    for j in range(first, m):
        now = int(stamps[j])
        value = cond.value[j]
        stay_gone = gone & (vanished[j] | np.isnan(value))
        was_firing = states.code == ev.FIRING
        s = ev.step(states, cond.breaching[j] & ~stay_gone, cond.recovered[j], now, for_seconds)
        code = s.states.code
        went_gone = (code == ev.FIRING) & vanished[j]
        gone = stay_gone | went_gone
        for i in np.flatnonzero(s.resolved | (was_firing & went_gone)).tolist():
            fired_at, v = open_at.pop(i)
            found.append((i, fired_at, now, v))
        for i in np.flatnonzero(s.fired & ~went_gone).tolist():
            fired_at = int(s.states.since[i]) + held_for
            open_at[i] = (min(fired_at, now + step), float(value[i]))
        code[gone] = ev.OK
        s.states.since[gone] = np.nan
        s.states.streak[gone] = 0
        states = s.states
    found.extend((i, fired_at, None, v) for i, (fired_at, v) in open_at.items())
    return Episodes(found, cond.breaching[first:].sum(axis=0))
