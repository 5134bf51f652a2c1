"""Alert conditions, computed for every series of a rule at once.

Pure numpy, no database: the engine reads one window of samples for all the
series a rule matches (`Window`), and these functions turn it into one value
per series (an aggregate, a rate, a forecast), a breach per series, and the
next alert state per series. Nothing loops over series in Python.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import numpy as np

OPERATORS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
AGGREGATIONS = ("last", "avg", "min", "max")

OK, PENDING, FIRING = 0, 1, 2


@dataclass(frozen=True)
class Window:
    """Samples of n series in one time window, series after series, each
    sorted by time: series i owns ts[offsets[i]:offsets[i + 1]]."""

    ts: np.ndarray  # int64
    values: np.ndarray  # float64
    offsets: np.ndarray  # int64, n + 1

    @classmethod
    def of(cls, series: list[tuple[list[int], list[float]]]) -> Window:
        """A window from per-series (timestamps, values): for tests and small callers."""
        counts = [len(ts) for ts, _ in series]
        offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        ts = np.concatenate([np.asarray(t, dtype=np.int64) for t, _ in series] or [[]])
        values = np.concatenate([np.asarray(v, dtype=np.float64) for _, v in series] or [[]])
        return cls(ts.astype(np.int64), values.astype(np.float64), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def _starts(self) -> np.ndarray:
        """Start offsets of the non-empty series (reduceat needs them)."""
        return self.offsets[:-1][self.counts > 0]


def _per_series(window: Window, reduced: np.ndarray) -> np.ndarray:
    """Spread values computed for the non-empty series back to all, NaN for empty ones."""
    out = np.full(len(window), np.nan)
    out[window.counts > 0] = reduced
    return out


def aggregate(window: Window, how: str) -> np.ndarray:
    """One value per series over the window: last, avg, min, max or pNN
    (percentile, e.g. p95). NaN for a series without samples."""
    if len(window.ts) == 0:
        return np.full(len(window), np.nan)
    starts = window._starts()
    counts = window.counts[window.counts > 0]
    if how == "last":
        return _per_series(window, window.values[starts + counts - 1])
    if how == "avg":
        return _per_series(window, np.add.reduceat(window.values, starts) / counts)
    if how == "min":
        return _per_series(window, np.minimum.reduceat(window.values, starts))
    if how == "max":
        return _per_series(window, np.maximum.reduceat(window.values, starts))
    if how.startswith("p") and how[1:].isdigit() and 0 <= int(how[1:]) <= 100:
        return _percentile(window, int(how[1:]))
    raise ValueError(f"unknown aggregation {how!r}: use last, avg, min, max or p0-p100")


def _percentile(window: Window, q: int) -> np.ndarray:
    """Per-series percentile (linear interpolation, as numpy's default), by
    sorting values within each series: one lexsort for all of them."""
    owner = np.repeat(np.arange(len(window)), window.counts)
    order = np.lexsort((window.values, owner))
    ordered = window.values[order]
    counts = window.counts
    present = counts > 0
    rank = (counts[present] - 1) * (q / 100)
    low = np.floor(rank).astype(np.int64)
    high = np.ceil(rank).astype(np.int64)
    base = window.offsets[:-1][present]
    lo, hi = ordered[base + low], ordered[base + high]
    return _per_series(window, lo + (hi - lo) * (rank - low))


@dataclass(frozen=True)
class Sums:
    """Per-series sums that fix a least-squares line: n, Σt, Σv, Σt², Σtv,
    with t relative to some origin. SQL can compute them over any window
    (and over rollup buckets, weighted by their count) without fetching samples."""

    n: np.ndarray
    st: np.ndarray
    sv: np.ndarray
    stt: np.ndarray
    stv: np.ndarray
    origin: float = 0.0

    @classmethod
    def of(cls, window: Window) -> Sums:
        owner = np.repeat(np.arange(len(window)), window.counts)
        t = window.ts.astype(np.float64)
        origin = float(t.min()) if len(t) else 0.0
        t = t - origin
        v = window.values

        def total(x: np.ndarray) -> np.ndarray:
            return np.bincount(owner, x, minlength=len(window))

        n = window.counts.astype(np.float64)
        return cls(n, total(t), total(v), total(t * t), total(t * v), origin)


def fit(sums: Sums) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares line per series: slope (per second), the mean value and
    the mean time it passes through. NaN slope with fewer than two samples or
    all of them at one time."""
    n = sums.n
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_t = sums.st / n
        mean_v = sums.sv / n
        sxx = sums.stt - sums.st * mean_t
        sxy = sums.stv - sums.st * mean_v
        # Relative to the spread of t, a tiny sxx is rounding noise: no slope.
        flat = sxx <= 1e-9 * np.maximum(sums.stt, 1.0)
        slope = np.where((n >= 2) & ~flat, sxy / sxx, np.nan)
    return slope, mean_v, mean_t + sums.origin


def _fit(window: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return fit(Sums.of(window))


def rate_per_second(window: Window) -> np.ndarray:
    """How fast each series changes over the window (least-squares slope, per
    second): "memory rising more than X per minute" is rate * 60 > X."""
    return _fit(window)[0]


def predict(window: Window, at: float) -> np.ndarray:
    """Each series' value at time `at`, extrapolated along its fitted line
    (Prometheus' predict_linear)."""
    slope, mean_v, mean_t = _fit(window)
    return mean_v + slope * (at - mean_t)


def seconds_until(window: Window, level: float, now: float) -> np.ndarray:
    """Seconds from `now` until each series' fitted line crosses `level`
    ("disk full in N hours", Zabbix' timeleft()): 0 if the trend crossed it
    already, inf for a flat line, NaN without two samples."""
    slope, mean_v, mean_t = _fit(window)
    with np.errstate(invalid="ignore", divide="ignore"):
        crossing = mean_t + (level - mean_v) / slope
        left = np.maximum(crossing - now, 0.0)
    out = np.where(slope == 0, np.inf, left)
    return np.where(np.isnan(slope), np.nan, out)


def compare(values: np.ndarray, op: str, threshold: float) -> np.ndarray:
    """values <op> threshold per series; a missing value (NaN) never breaches."""
    if op not in OPERATORS:
        raise ValueError(f"unknown operator {op!r}: use >, >=, < or <=")
    with np.errstate(invalid="ignore"):
        return OPERATORS[op](values, threshold) & ~np.isnan(values)


def no_data(last_ts: np.ndarray, now: float, after_seconds: float) -> np.ndarray:
    """Series whose newest sample (NaN: never) is older than `after_seconds`."""
    with np.errstate(invalid="ignore"):
        return np.isnan(last_ts) | (now - last_ts > after_seconds)


@dataclass
class States:
    """Alert state of each (rule, series): code, when the current breach began,
    and how many evaluations in a row it has breached."""

    code: np.ndarray  # OK, PENDING or FIRING
    since: np.ndarray  # float, NaN while OK
    streak: np.ndarray  # int64

    @classmethod
    def new(cls, n: int) -> States:
        return cls(np.zeros(n, dtype=np.int8), np.full(n, np.nan), np.zeros(n, dtype=np.int64))


@dataclass
class Step:
    """The next states, and which series fired or resolved at this evaluation."""

    states: States
    fired: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    resolved: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


def step(
    states: States,
    breaching: np.ndarray,
    recovered: np.ndarray | None,
    now: float,
    for_seconds: float = 0.0,
    for_evaluations: int = 1,
) -> Step:
    """One evaluation of the state machine ok -> pending -> firing -> ok.

    A breach must hold for `for_seconds` and for `for_evaluations` evaluations
    in a row before it fires; a pending breach that stops goes back to ok
    without a word. A firing alert resolves only when `recovered` (hysteresis:
    fire above 90, resolve below 80); without a recovery condition, when it
    stops breaching.
    """
    if recovered is None:
        recovered = ~breaching
    code, since, streak = states.code.copy(), states.since.copy(), states.streak.copy()
    was_firing = code == FIRING

    starting = (code == OK) & breaching
    since[starting] = now
    streak = np.where(breaching, streak + 1, 0)
    held = breaching & (now - since >= for_seconds) & (streak >= for_evaluations)

    fired = ~was_firing & held
    resolved = was_firing & recovered
    code = np.where(
        was_firing,
        np.where(resolved, OK, FIRING),
        np.where(held, FIRING, np.where(breaching, PENDING, OK)),
    ).astype(np.int8)
    since[code == OK] = np.nan
    streak[code == OK] = 0
    return Step(States(code, since, streak), fired, resolved)
