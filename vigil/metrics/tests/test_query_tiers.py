"""Which tier answers a query, and what its points are: compared with brute force."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigil.metrics import query, raw, state
from vigil.metrics.buckets import aggregate
from vigil.metrics.models import Retention, Rollup1h, Rollup5m
from vigil.servers.models import Location
from vigil.testing import make_server, store

DAY = 86_400
# Retention of raw, 5 min, 1 h as the benchmarks keep them.
KEEP = (2, 7, 30)
NOW = 1_790_006_400  # a multiple of 3600
T0 = NOW - 2 * DAY


def brute(samples, step: int, lo: int, hi: int) -> list[tuple[int, float, float, float]]:
    """(bucket start, avg, min, max) of every bucket of `step` seconds, by hand."""
    groups: dict[int, list[float]] = defaultdict(list)
    for t, v in samples:
        if lo <= t <= hi:
            groups[t - t % step].append(v)
    return [(b, sum(vs) / len(vs), min(vs), max(vs)) for b, vs in sorted(groups.items())]


def wave(start: int, end: int, every: int, seed: int = 1) -> list[tuple[int, float]]:
    """Samples with noise and a few spikes, so that min, max and avg all differ."""
    rng = np.random.default_rng(seed)
    ts = np.arange(start, end + 1, every)
    values = 50 + 20 * np.sin(ts / 5000) + rng.normal(0, 3, len(ts))
    values[rng.integers(0, len(ts), 5)] = 99.0
    return list(zip(ts.tolist(), np.round(values, 3).tolist(), strict=True))


def roll_up(model, series_id: int, samples, width: int, until: int) -> None:
    """What the rollup job stores: the buckets of `width` before `until`."""
    ts = np.array([t for t, _ in samples if t < until], dtype=np.int64)
    values = np.array([v for t, v in samples if t < until], dtype=np.float64)
    b = aggregate(ts, values, width)
    model.objects.bulk_create(
        model(series_id=series_id, ts=int(t), min=lo, max=hi, sum=s, count=int(n), last=la)
        for t, lo, hi, s, n, la in zip(b.ts, b.min, b.max, b.sum, b.count, b.last, strict=True)
    )


# --- Tier and step: pure --------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds_per_point", "tier", "step"),
    [
        (1, "raw", 1),
        (299, "raw", None),
        (300, "5m", 300),
        (301, "5m", 600),
        (3599, "5m", 3600),
        (3600, "1h", 3600),
        (3601, "1h", 7200),
    ],
)
def test_it_picks_the_finest_tier_whose_step_fits(seconds_per_point, tier, step):
    max_points = 100
    # A range aligned to every width: exactly max_points buckets of `step`.
    start = NOW - 10 * DAY
    end = start + seconds_per_point * max_points - 1
    chosen, got = query.choose_tier(start, end, max_points, NOW, (30, 30, 30))
    assert chosen.name == tier
    assert got == step if step else got >= seconds_per_point
    assert query.bucket_count(start, end, got) <= max_points


def test_a_tier_whose_retention_ends_after_start_gives_way_to_a_coarser_one():
    start, end = NOW - 3 * DAY, NOW
    # 3 days in 2000 points: a 130 s step, raw by itself, but raw keeps 2 days.
    assert query.choose_tier(start, end, 2000, NOW, KEEP)[0].name == "5m"
    # 5-minute rollups keep 7 days: 8 days in 2000 points goes to 1 h.
    assert query.choose_tier(NOW - 8 * DAY, end, 2000, NOW, KEEP)[0].name == "1h"
    # Nothing coarser than 1 h: it answers even beyond its retention.
    assert query.choose_tier(NOW - 99 * DAY, end, 2000, NOW, KEEP)[0].name == "1h"


def test_a_tier_that_reaches_start_within_one_step_still_answers():
    # "The last 7 days" asked a few seconds before the server's clock reads now.
    start = NOW - 7 * DAY - 5
    tier, step = query.choose_tier(start, NOW, 1000, NOW, KEEP)
    assert (tier.name, step) == ("5m", 900)
    # More than one step short: the 5-minute tier does not reach start.
    late = NOW - 7 * DAY - 1000
    assert query.choose_tier(late, NOW, 1000, NOW, KEEP)[0].name == "1h"


@given(
    start=st.integers(0, 4_000_000_000),
    span=st.integers(1, 400 * DAY),
    max_points=st.integers(1, 10_000),
)
def test_the_step_is_a_multiple_of_the_tier_width_and_fits_max_points(start, span, max_points):
    end = start + span
    tier, step = query.choose_tier(start, end, max_points, end, (10_000, 10_000, 10_000))
    assert step % tier.width == 0
    assert step >= math.ceil(span / max_points)
    assert max_points == 1 or query.bucket_count(start, end, step) <= max_points


def test_a_raw_bucket_of_one_sample_keeps_its_exact_time():
    ts = np.array([1000, 1003, 1250], dtype=np.int64)
    b, stamps = raw.stamped(ts, np.array([1.0, 3.0, 5.0]), 100)
    assert stamps.tolist() == [1000, 1250]
    assert b.avg.tolist() == [2.0, 5.0]


# --- Against the database ---------------------------------------------------------


@pytest.fixture
def retention(db):
    return Retention.objects.create(
        raw_days=KEEP[0], rollup_5m_days=KEEP[1], rollup_1h_days=KEEP[2]
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("model", "width", "watermark_name", "days", "max_points"),
    [
        (Rollup5m, 300, state.ROLLUP_5M, 5, 700),
        (Rollup1h, 3600, state.ROLLUP_1H, 20, 300),
    ],
)
def test_rollup_points_and_envelopes_equal_brute_force_and_reach_now_from_raw(
    retention, model, width, watermark_name, days, max_points
):
    server = make_server("web-1")
    start = NOW - days * DAY + 1234
    samples = wave(NOW - days * DAY - 7200, NOW, 60)
    # The raw tier still holds the last day (older samples exist only as rollups).
    store(server, "cpu_usage_percent", [(t, v) for t, v in samples if t >= NOW - DAY])
    series_id = server.series.get().pk
    # The rollup job got to a moment inside a bucket: that bucket is final.
    watermark = NOW - 3 * 3600 - 100
    roll_up(model, series_id, samples, width, -(-watermark // width) * width)
    state.put(watermark_name, watermark)

    result = query.run("cpu_usage_percent", start, NOW, max_points, now=NOW)

    assert result.tier == {300: "5m", 3600: "1h"}[width]
    assert result.step % width == 0 and result.step >= (NOW - start) / max_points
    (series,) = result.series
    expected = brute(samples, result.step, start - start % result.step, NOW)
    assert len(series.points) == len(expected) <= max_points
    assert [p[0] for p in series.points] == [e[0] for e in expected]
    assert [p[1] for p in series.points] == pytest.approx([e[1] for e in expected])
    assert series.min == pytest.approx([e[2] for e in expected])
    assert series.max == pytest.approx([e[3] for e in expected])
    assert series.points[-1][0] == NOW - NOW % result.step  # the tail reaches now
    assert max(series.max) == 99.0


@pytest.mark.django_db
def test_rollup_rows_at_or_after_the_watermark_are_not_final_and_are_ignored(retention):
    server = make_server("web-1")
    samples = wave(NOW - 6 * 3600, NOW, 60)
    store(server, "load1", samples)
    series_id = server.series.get().pk
    watermark = NOW - 2 * 3600
    roll_up(Rollup5m, series_id, samples, 300, watermark)
    # A bucket a crashed job left half written after the watermark.
    Rollup5m.objects.create(
        series_id=series_id, ts=watermark, min=0, max=1e9, sum=1e9, count=1, last=0
    )
    state.put(state.ROLLUP_5M, watermark)

    result = query.run("load1", NOW - 6 * 3600, NOW, 40, now=NOW)

    assert result.tier == "5m"
    expected = brute(samples, result.step, NOW - 6 * 3600, NOW)
    assert max(result.series[0].max) == pytest.approx(max(e[3] for e in expected))
    assert [p[1] for p in result.series[0].points] == pytest.approx([e[1] for e in expected])


@pytest.mark.django_db
def test_without_a_watermark_the_rollup_tier_is_computed_from_raw(retention):
    server = make_server("web-1")
    samples = wave(NOW - DAY, NOW, 120)
    store(server, "load1", samples)
    result = query.run("load1", NOW - DAY, NOW, 100, now=NOW)
    assert (result.tier, result.step) == ("5m", 900)
    expected = brute(samples, 900, NOW - DAY, NOW)
    points = result.series[0].points
    assert [p[0] for p in points] == [e[0] for e in expected]
    assert [p[1] for p in points] == pytest.approx([e[1] for e in expected])
    assert result.series[0].min == pytest.approx([e[2] for e in expected])


@pytest.mark.django_db
def test_raw_points_carry_an_envelope_only_when_a_bucket_holds_several_samples(retention):
    server = make_server("web-1")
    samples = wave(NOW - 3600, NOW, 10)
    store(server, "load1", samples)

    fine = query.run("load1", NOW - 3600, NOW, 1000, now=NOW).series[0]
    assert fine.min is None and fine.max is None
    assert fine.as_dict().keys() == {"server", "metric", "labels", "points"}
    assert [tuple(p) for p in fine.points] == samples

    coarse = query.run("load1", NOW - 3600, NOW, 50, now=NOW)
    assert coarse.tier == "raw"
    expected = brute(samples, coarse.step, NOW - 3600, NOW)
    series = coarse.series[0]
    assert series.min == [e[2] for e in expected]
    assert series.max == [e[3] for e in expected]
    assert [p[1] for p in series.points] == pytest.approx([e[1] for e in expected])
    assert len(series.points) == len(series.min) == len(series.max) <= 50


@pytest.mark.django_db
def test_retention_sends_an_old_range_to_the_rollups(retention):
    server = make_server("web-1")
    old = wave(NOW - 5 * DAY, NOW - 4 * DAY, 60)
    store(server, "load1", old)
    roll_up(Rollup5m, server.series.get().pk, old, 300, NOW - 3600)
    state.put(state.ROLLUP_5M, NOW - 3600)
    # 10 minutes four days ago in 600 points: 1 s steps, but raw keeps 2 days.
    start = NOW - 4 * DAY - 600
    result = query.run("load1", start, NOW - 4 * DAY, 600, now=NOW)
    assert (result.tier, result.step) == ("5m", 300)
    assert [p[0] for p in result.series[0].points] == [
        start - start % 300 + i * 300 for i in range(3)
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("tier_range", [3600, 5 * DAY, 20 * DAY])
def test_a_query_reads_each_tier_once_whatever_the_number_of_series(
    retention, django_assert_num_queries, tier_range
):
    paris = Location.objects.create(name="paris")
    for i in range(25):
        server = make_server(f"web-{i}", location=paris)
        store(server, "load1", [(NOW - 600, i), (NOW - 300, i)])
        Rollup1h.objects.create(
            series_id=server.series.get().pk,
            ts=NOW - 10 * DAY,
            min=i,
            max=i,
            sum=i,
            count=1,
            last=i,
        )
        Rollup5m.objects.create(
            series_id=server.series.get().pk, ts=NOW - 3 * DAY, min=i, max=i, sum=i, count=1, last=i
        )
    state.put(state.ROLLUP_5M, NOW - 3600)
    state.put(state.ROLLUP_1H, NOW - 3600)
    # Series, retention, then raw: blocks and hot rows; rollups: watermark,
    # stored buckets, and the tail's blocks and hot rows.
    expected = 4 if tier_range == 3600 else 6
    for location in (None, "paris"):
        with django_assert_num_queries(expected):
            result = query.run("load1", NOW - tier_range, NOW, 500, location=location, now=NOW)
        assert len(result.series) == 25
        assert all(s.points for s in result.series)
