"""Backtests of rules over stored history, with exact expected episodes, and
against the live engine stepped over the same data."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.alerts import backtest as bt
from vigil.alerts import backtest_replay as rp
from vigil.alerts.models import AlertEvent, Rule
from vigil.alerts.tasks import evaluate_alerts
from vigil.metrics import state
from vigil.metrics.models import Block
from vigil.metrics.tasks import maintain_history
from vigil.testing import make_server, store

NOW = 1_790_006_400  # a multiple of 3600
HOUR = 3600
T0 = NOW - 5 * HOUR  # where the interesting part of each history begins


def flat(start: int, end: int, value: float, every: int = 10) -> list[tuple[int, float]]:
    return [(t, value) for t in range(start, end, every)]


def history(*parts: tuple[int, int, float], start: int = T0 - HOUR, end: int = NOW) -> list:
    """50 every 10 s over [start, end), with the value of each (from, to, value) part."""
    points = dict(flat(start, end, 50.0))
    for lo, hi, value in parts:
        points.update(flat(lo, hi, value))
    return sorted(points.items())


def rule(**kw) -> Rule:
    """An unsaved rule, as a form builds it before saving."""
    fields = {
        "name": "backtest",
        "kind": "threshold",
        "metric": "cpu_usage_percent",
        "aggregation": "last",
        "operator": ">",
        "threshold": 90.0,
        "for_seconds": 0,
    }
    fields.update(kw)
    return Rule(**fields)


def spans(result: bt.BacktestResult) -> list[tuple[str, int, int | None]]:
    return [(e.server, e.fired_at, e.resolved_at) for e in result.episodes]


@pytest.fixture
def web():
    return make_server("web-1")


# --- Pure parts ------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=40),
    st.integers(1, 12),
)
def test_it_takes_rolling_extremes_and_sums_as_brute_force_does(values, k):
    x = np.array(values)[:, None].repeat(2, axis=1)
    x[:, 1] *= -1
    for j in range(len(values)):
        window = x[max(0, j - k + 1) : j + 1]
        assert np.array_equal(rp.rolling_extreme(x, k, np.minimum)[j], window.min(axis=0))
        assert np.array_equal(rp.rolling_extreme(x, k, np.maximum)[j], window.max(axis=0))
        assert np.allclose(rp.rolling_sum(x, k)[j], window.sum(axis=0), rtol=1e-9, atol=1e-3)


def test_it_fits_the_line_of_a_steady_trend_through_buckets():
    step, m = 300, 50
    t = np.arange(m) * step + step / 2  # bucket middles
    count = np.full((m, 1), 30.0)
    total = (10 + 0.01 * t)[:, None] * count  # 0.01 per second
    mx = rp.Matrix(count, total, total / count, total / count)
    slope, level = rp.trend(mx, 4, step)
    assert np.allclose(slope[3:], 0.01)
    # The line's value at the end of each bucket.
    assert np.allclose(level[3:, 0], 10 + 0.01 * (np.arange(3, m) + 1) * step)
    assert np.isnan(slope[0, 0])


@pytest.mark.parametrize(
    ("days", "retention", "tier", "step"),
    [
        (1, (14, 180, 1800), "raw", 60),
        (2, (14, 180, 1800), "raw", 120),
        (7, (14, 180, 1800), "5m", 300),
        (7, (3, 180, 1800), "5m", 300),
        (30, (14, 180, 1800), "5m", 1800),
        (90, (14, 30, 1800), "1h", 7200),
    ],
)
def test_it_replays_about_a_week_of_five_minute_steps(days, retention, tier, step):
    chosen, got = bt.choose_step(days, retention)
    assert (chosen.name, got) == (tier, step)


# --- Over stored history -----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("days", [1, 7])
def test_it_finds_a_threshold_held_for_a_duration(web, days):
    quiet = make_server("web-2")
    store(web, "cpu_usage_percent", history((T0, T0 + 1200, 95.0)))
    store(quiet, "cpu_usage_percent", history())

    result = bt.backtest(rule(for_seconds=600), days=days, now=NOW)

    assert result.series == 2
    assert result.step == (60 if days == 1 else 300)
    assert result.fired == 1
    assert spans(result) == [("web-1", T0 + 600, T0 + 1200)]
    assert result.episodes[0].value == 95.0
    assert result.episodes[0].labels == {}


@pytest.mark.django_db
def test_it_lets_a_short_spike_pass_a_rule_that_wants_it_held(web):
    store(web, "cpu_usage_percent", history((T0 + 130, T0 + 250, 99.0)))
    for days in (1, 7):
        assert bt.backtest(rule(for_seconds=300), days=days, now=NOW).fired == 0
    # A rule on the window's maximum sees the spike at once.
    caught = bt.backtest(rule(aggregation="max"), days=1, now=NOW)
    assert caught.fired == 1
    assert T0 + 60 <= caught.episodes[0].fired_at <= T0 + 180


@pytest.mark.django_db
def test_it_resolves_only_past_the_recovery_threshold(web):
    parts = ((T0, T0 + 600, 95.0), (T0 + 600, T0 + 1200, 85.0), (T0 + 1200, T0 + 1800, 95.0))
    store(web, "cpu_usage_percent", history(*parts))

    plain = bt.backtest(rule(), days=1, now=NOW)
    assert spans(plain) == [("web-1", T0, T0 + 600), ("web-1", T0 + 1200, T0 + 1800)]

    hysteresis = bt.backtest(rule(recovery_threshold=80.0), days=1, now=NOW)
    assert spans(hysteresis) == [("web-1", T0, T0 + 1800)]


@pytest.mark.django_db
def test_it_forecasts_a_file_system_filling_up(web):
    start = NOW - 26 * HOUR
    ts = np.arange(start, NOW, 10)
    rising = 40 + 2 * (ts - start) / HOUR  # 2 % an hour: 52 % six hours in
    labels = {"mountpoint": "/"}
    store(web, "filesystem_used_percent", list(zip(ts, rising, strict=True)), labels)
    store(make_server("db-1"), "filesystem_used_percent", [(t, 90.0) for t in ts], labels)
    forecast = rule(
        kind="forecast",
        metric="filesystem_used_percent",
        window_seconds=6 * HOUR,
        operator=">=",
        threshold=100.0,
        forecast_seconds=24 * HOUR,
        matchers="mountpoint=/",
    )

    result = bt.backtest(forecast, days=1, now=NOW)

    # Full within 24 h once the line passes 52 %: six hours after the start.
    assert result.fired == 1
    [episode] = result.episodes
    assert (episode.server, episode.labels, episode.resolved_at) == ("web-1", labels, None)
    assert abs(episode.fired_at - (start + 6 * HOUR)) <= result.step
    assert episode.value == pytest.approx(52, abs=0.1)


@pytest.mark.django_db
def test_it_finds_a_server_that_went_down(web):
    ups = [(t, 0.0 if T0 <= t < T0 + 1200 else 1.0) for t in range(T0 - HOUR, NOW, 30)]
    store(web, "up", ups)
    store(make_server("web-2"), "up", [(t, 1.0) for t in range(T0 - HOUR, NOW, 30)])
    down = rule(kind="host_down", metric="", for_seconds=120, operator="", threshold=None)

    for days in (1, 7):
        result = bt.backtest(down, days=days, now=NOW)
        assert spans(result) == [("web-1", T0 + 120, T0 + 1200)], days


@pytest.mark.django_db
def test_it_finds_series_that_stopped_reporting_on_servers_that_were_up(web):
    other = make_server("web-2")
    store(web, "load1", flat(T0 - HOUR, T0, 1.0))
    store(web, "up", flat(T0 - HOUR, NOW, 1.0, every=30))
    # The other server was down: its silence is host_down's business.
    store(other, "load1", flat(T0 - HOUR, T0, 1.0))
    store(other, "up", flat(T0 - HOUR, T0, 1.0, every=30) + flat(T0, NOW, 0.0, every=30))
    silent = rule(kind="no_data", metric="load1", no_data_seconds=600, operator="", threshold=None)

    result = bt.backtest(silent, days=1, now=NOW)

    # It fires once silent for 10 minutes and is gone after an hour, as live.
    [episode] = result.episodes
    assert episode.server == "web-1"
    assert abs(episode.fired_at - (T0 + 600)) <= result.step
    assert abs(episode.resolved_at - (T0 + HOUR)) <= result.step


@pytest.mark.django_db
def test_it_finds_a_rate_of_change(web):
    climb = [(t, 50 + 2 * (t - T0) / 60) for t in range(T0, T0 + 1800, 10)]  # 2 a minute
    top = flat(T0 + 1800, NOW, 110.0)
    store(web, "memory_used_percent", history(start=T0 - HOUR, end=T0) + climb + top)
    rising = rule(kind="rate", metric="memory_used_percent", threshold=1.0, window_seconds=600)

    result = bt.backtest(rising, days=1, now=NOW)

    # The fitted slope passes 1 a minute once a good part of the window climbs,
    # and falls below it once a good part of the window is flat again.
    [episode] = result.episodes
    assert T0 < episode.fired_at <= T0 + 600
    assert 1.0 < episode.value <= 2.0
    assert T0 + 1800 < episode.resolved_at <= T0 + 2400


@pytest.mark.django_db
def test_it_reads_rollups_and_blocks_as_it_read_the_hot_table(web):
    store(web, "cpu_usage_percent", history((T0, T0 + 1200, 95.0), (T0 + 3000, T0 + 3900, 97.0)))
    before = bt.backtest(rule(for_seconds=600), days=7, now=NOW)
    maintain_history(NOW)
    assert state.get(state.ROLLUP_5M) > T0 + 3900
    assert Block.objects.exists()
    after = bt.backtest(rule(for_seconds=600), days=7, now=NOW)
    assert (
        spans(before)
        == spans(after)
        == [
            ("web-1", T0 + 600, T0 + 1200),
            ("web-1", T0 + 3600, T0 + 3900),
        ]
    )
    assert before.charts == after.charts


@pytest.mark.django_db
def test_it_backtests_an_unsaved_rule_scoped_to_one_server(web):
    other = make_server("web-2")
    store(web, "cpu_usage_percent", history((T0, T0 + 600, 95.0)))
    store(other, "cpu_usage_percent", history((T0, T0 + 600, 95.0)))

    result = bt.backtest(rule(scope="server", server=other), days=1, now=NOW)

    assert result.series == 1
    assert spans(result) == [("web-2", T0, T0 + 600)]
    assert Rule.objects.filter(name="backtest").count() == 0


@pytest.mark.django_db
def test_it_charts_the_series_that_fired_most_and_answers_in_json(web):
    servers = [web] + [make_server(f"web-{i}") for i in range(2, 9)]
    for i, server in enumerate(servers):
        breaches = [(T0 + k * 1200, T0 + k * 1200 + 300, 95.0) for k in range(i % 4)]
        store(server, "cpu_usage_percent", history(*breaches))

    result = bt.backtest(rule(), days=7, now=NOW)

    assert result.fired == sum(i % 4 for i in range(8))
    assert len(result.charts) == bt.CHARTS
    assert [c.server for c in result.charts[:2]] == ["web-4", "web-8"]  # three episodes each
    points = result.charts[0].points
    assert points[0][0] >= NOW - 7 * 86_400
    assert all(b[0] - a[0] == result.step for a, b in zip(points, points[1:], strict=False))
    assert max(v for _, v in points) == 95.0
    doc = json.loads(json.dumps(result.as_dict(), allow_nan=False))
    assert set(doc) == {"fired", "series", "step", "seconds", "episodes", "charts"}
    assert doc["episodes"][0] == {
        "server": "web-2",
        "labels": {},
        "fired_at": T0,
        "resolved_at": T0 + 300,
        "value": 95.0,
    }


@pytest.mark.django_db
def test_it_gives_the_same_answer_a_few_series_at_a_time(web, monkeypatch):
    for i, server in enumerate([web, make_server("web-2"), make_server("web-3")]):
        store(server, "cpu_usage_percent", history((T0 + i * 600, T0 + i * 600 + 900, 95.0)))
    whole = bt.backtest(rule(for_seconds=300), days=1, now=NOW)
    monkeypatch.setattr(bt, "CHUNK_CELLS", 1)  # one series per chunk
    assert bt.backtest(rule(for_seconds=300), days=1, now=NOW).episodes == whole.episodes
    assert spans(whole) == [
        ("web-1", T0 + 300, T0 + 900),
        ("web-2", T0 + 900, T0 + 1500),
        ("web-3", T0 + 1500, T0 + 2100),
    ]


@pytest.mark.django_db
def test_it_refuses_a_rule_that_matches_too_many_series(web, monkeypatch):
    monkeypatch.setattr(bt, "MAX_SERIES", 1)
    store(web, "cpu_usage_percent", history())
    store(make_server("web-2"), "cpu_usage_percent", history())
    with pytest.raises(ValueError, match="matches 2 series, more than 1"):
        bt.backtest(rule(), now=NOW)
    with pytest.raises(ValueError, match="days"):
        bt.backtest(rule(), days=0, now=NOW)
    with pytest.raises(ValueError, match="threshold"):
        bt.backtest(rule(threshold=None), now=NOW)


@pytest.mark.django_db
def test_it_finds_nothing_for_a_metric_no_one_sends(web):
    result = bt.backtest(rule(metric="nothing_here"), now=NOW)
    assert (result.fired, result.series, result.episodes, result.charts) == (0, 0, [], [])


@pytest.mark.django_db
def test_it_agrees_with_the_live_engine_stepped_over_the_same_data(web):
    """Breaches of 20, 15 (not aligned to any bucket) and 10 minutes, and a
    2-minute spike that a 5-minute average hides: three firings, live and replayed."""
    start = NOW - 3 * HOUR
    parts = (
        (start + 1800, start + 3000, 96.0),
        (start + 4200, start + 4320, 99.0),
        (start + 6170, start + 7070, 95.0),
        (start + 8400, start + 9000, 97.0),
    )
    store(web, "cpu_usage_percent", history(*parts, start=start - HOUR, end=NOW))
    Rule.objects.all().delete()
    live = rule(aggregation="avg", window_seconds=300, for_seconds=120)
    live.save()

    for t in range(start, NOW + 1, 60):
        evaluate_alerts(datetime.fromtimestamp(t, tz=UTC))
    fired = sorted(
        int(e.at.timestamp())
        for e in AlertEvent.objects.filter(rule=live, kind=AlertEvent.Kind.FIRING)
    )

    result = bt.backtest(live, days=1, now=NOW)
    assert len(fired) == result.fired == 3
    for at, episode in zip(fired, result.episodes, strict=True):
        assert abs(episode.fired_at - at) <= 2 * result.step
