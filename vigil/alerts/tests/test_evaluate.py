"""Alert conditions and the state machine, with exact expected timelines."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.alerts import evaluate as ev
from vigil.alerts.evaluate import FIRING, OK, PENDING, States, Window

W = Window.of(
    [
        ([0, 10, 20, 30], [1.0, 5.0, 3.0, 2.0]),
        ([], []),
        ([5], [7.0]),
    ]
)


@pytest.mark.parametrize(
    "how, expected",
    [
        ("last", [2.0, math.nan, 7.0]),
        ("avg", [2.75, math.nan, 7.0]),
        ("min", [1.0, math.nan, 7.0]),
        ("max", [5.0, math.nan, 7.0]),
        ("p50", [2.5, math.nan, 7.0]),
        ("p100", [5.0, math.nan, 7.0]),
        ("p0", [1.0, math.nan, 7.0]),
    ],
)
def test_it_aggregates_every_series_of_a_window_at_once(how, expected):
    assert np.allclose(ev.aggregate(W, how), expected, equal_nan=True)


@pytest.mark.parametrize("how", ["median", "p101", "p", "avg "])
def test_an_unknown_aggregation_is_refused_by_name(how):
    with pytest.raises(ValueError, match="unknown aggregation"):
        ev.aggregate(W, how)


@given(
    st.lists(
        st.lists(st.floats(-1e6, 1e6, allow_nan=False), max_size=30),
        min_size=1,
        max_size=8,
    ),
    st.integers(0, 100),
)
def test_percentiles_equal_numpy_per_series(series, q):
    window = Window.of([(list(range(len(v))), v) for v in series])
    got = ev.aggregate(window, f"p{q}")
    for value, v in zip(got, series, strict=True):
        if v:
            assert value == pytest.approx(np.percentile(v, q), rel=1e-9, abs=1e-6)
        else:
            assert math.isnan(value)


def test_a_missing_value_never_breaches():
    values = np.array([95.0, math.nan, 85.0])
    assert list(ev.compare(values, ">", 90)) == [True, False, False]
    assert list(ev.compare(values, "<=", 85)) == [False, False, True]
    with pytest.raises(ValueError, match="unknown operator"):
        ev.compare(values, "=>", 1)


def test_rate_and_forecast_follow_the_fitted_line():
    # A file system filling 1 % per hour from 50 %, and a flat one.
    hours = [h * 3600 for h in range(6)]
    window = Window.of([(hours, [50.0 + h for h in range(6)]), (hours, [40.0] * 6), ([0], [1.0])])
    now = 5 * 3600
    rate = ev.rate_per_second(window)
    assert rate[0] * 3600 == pytest.approx(1.0) and rate[1] == 0 and math.isnan(rate[2])
    assert ev.predict(window, now + 10 * 3600)[0] == pytest.approx(65.0)
    left = ev.seconds_until(window, 100.0, now)
    assert left[0] == pytest.approx(45 * 3600)  # full in 45 hours
    assert left[1] == math.inf and math.isnan(left[2])
    # A trend that crossed the level already has no time left.
    assert ev.seconds_until(window, 52.0, now)[0] == 0.0


def test_no_data_after_a_duration_and_for_series_never_seen():
    last = np.array([1000.0, 1100.0, math.nan])
    assert list(ev.no_data(last, 1200, after_seconds=120)) == [True, False, True]


def run_timeline(breaches, recoveries=None, every=30, **hold):
    """States after each evaluation of one series, and its fired/resolved events."""
    states = States.new(1)
    out = []
    for i, breach in enumerate(breaches):
        recovered = None if recoveries is None else np.array([recoveries[i]])
        result = ev.step(states, np.array([breach]), recovered, now=i * every, **hold)
        states = result.states
        event = "fire" if result.fired[0] else "resolve" if result.resolved[0] else ""
        out.append((int(states.code[0]), event))
    return out


P, F = PENDING, FIRING


@pytest.mark.parametrize(
    "breaches, hold, expected",
    [
        # No hold: the first breach fires, the first non-breach resolves.
        ([0, 1, 1, 0], {}, [(OK, ""), (F, "fire"), (F, ""), (OK, "resolve")]),
        # Held for 60 s at 30 s evaluations: the third breach in a row fires.
        (
            [1, 1, 1, 1, 0],
            {"for_seconds": 60},
            [(P, ""), (P, ""), (F, "fire"), (F, ""), (OK, "resolve")],
        ),
        # A spike shorter than the duration never fires, and says nothing.
        ([1, 1, 0, 1, 0], {"for_seconds": 60}, [(P, ""), (P, ""), (OK, ""), (P, ""), (OK, "")]),
        # N consecutive evaluations.
        (
            [1, 0, 1, 1, 1],
            {"for_evaluations": 3},
            [(P, ""), (OK, ""), (P, ""), (P, ""), (F, "fire")],
        ),
    ],
)
def test_the_state_machine_follows_the_expected_timeline(breaches, hold, expected):
    assert run_timeline([bool(b) for b in breaches], **hold) == expected


def test_a_recovery_threshold_keeps_an_alert_firing_between_the_two_levels():
    # Fires above 90, resolves only below 80: 85 keeps it firing.
    values = np.array([95.0, 85.0, 91.0, 79.0, 85.0])
    timeline = run_timeline(list(values > 90), list(values < 80))
    assert timeline == [(F, "fire"), (F, ""), (F, ""), (OK, "resolve"), (OK, "")]


def test_many_series_step_together_each_on_its_own_timeline():
    states = States.new(3)
    breaching = [np.array(b) for b in ([1, 1, 0], [1, 0, 0], [1, 1, 1])]
    events = []
    for i, b in enumerate(breaching):
        result = ev.step(states, b.astype(bool), None, now=i * 30, for_seconds=30)
        states = result.states
        events.append((list(result.fired), list(result.resolved)))
    # Series 0 breaches throughout, 1 breaches, stops and starts again, 2 starts late.
    assert list(states.code) == [FIRING, PENDING, PENDING]
    assert events[1] == ([True, False, False], [False, False, False])
    assert events[2] == ([False, False, False], [False, False, False])
