from __future__ import annotations

from io import StringIO

import numpy as np
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from vigil.metrics import codec, state, synthetic
from vigil.metrics.buckets import aggregate
from vigil.metrics.models import Series
from vigil.servers.models import Location, Server
from vigil.testing import make_server, store

# Not aligned to any bucket or window, so that every boundary is exercised.
NOW = 1_790_004_321
SMALL = dict(servers=2, series=5, raw_days=1, days_5m=2, days_1h=3, hot_hours=2, now=NOW)


def generate(**kw) -> str:
    out, err = StringIO(), StringIO()
    call_command("generate_history", **{**SMALL, **kw}, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def plan(**kw) -> synthetic.Plan:
    return synthetic.make_plan(
        NOW,
        raw_days=kw.get("raw_days", 1),
        days_5m=kw.get("days_5m", 2),
        days_1h=kw.get("days_1h", 3),
        interval=10,
        hot_hours=2,
        block_seconds=settings.HISTORY_BLOCK_SECONDS,
    )


def rows(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def count(table: str, series_id: int | None = None) -> int:
    if series_id is None:
        return rows(f"SELECT COUNT(*) FROM {table}")[0][0]  # noqa: S608
    return rows(f"SELECT COUNT(*) FROM {table} WHERE series_id = %s", [series_id])[0][0]  # noqa: S608


def raw_samples(series_id: int) -> tuple[np.ndarray, np.ndarray]:
    """The series' raw history: its blocks decoded one by one, then its hot rows."""
    ts, values = [], []
    for data, first, last, n in rows(
        "SELECT data, first_ts, last_ts, count FROM metrics_block "
        "WHERE series_id = %s ORDER BY start",
        [series_id],
    ):
        t, v = codec.decode(bytes(data))
        assert (len(t), int(t[0]), int(t[-1])) == (n, first, last)
        ts.append(t)
        values.append(v)
    hot = rows("SELECT ts, value FROM metrics_sample WHERE series_id = %s ORDER BY ts", [series_id])
    ts.append(np.array([r[0] for r in hot], dtype=np.int64))
    values.append(np.array([r[1] for r in hot], dtype=np.float64))
    return np.concatenate(ts), np.concatenate(values)


def stored_rollups(table: str, series_id: int) -> np.ndarray:
    return np.array(
        rows(
            f"SELECT ts, min, max, sum, count, last FROM {table} "  # noqa: S608
            "WHERE series_id = %s ORDER BY ts",
            [series_id],
        ),
        dtype=np.float64,
    )


# -- the pure generator ---------------------------------------------------------


def test_it_names_distinct_canonical_series_for_any_count():
    for n in (1, 5, 50, 120):
        specs = synthetic.catalog(n)
        assert len(specs) == n
        assert len(set(specs)) == n
    names = {s.metric for s in synthetic.catalog(50)}
    assert {"cpu_usage_percent", "load15", "up", "filesystem_free_bytes"} <= names


def test_it_makes_values_shaped_like_an_agents():
    specs = synthetic.catalog(50)
    history = synthetic.generate_server(specs, plan(), seed=3, index=0)
    by_metric = {}
    for spec, v in zip(specs, history.values, strict=True):
        by_metric.setdefault(spec.metric, []).append(v)
    cpu = by_metric["cpu_usage_percent"][0]
    assert cpu.min() >= 0 and cpu.max() <= 100 and cpu.std() > 0
    # Two decimals, as an agent prints them.
    assert np.array_equal(np.round(cpu, 2), cpu)
    for v in by_metric["memory_available_bytes"] + by_metric["filesystem_free_bytes"]:
        assert np.array_equal(np.rint(v), v) and v.min() > 0
    for v in by_metric["network_receive_bytes_per_second"]:
        assert np.array_equal(np.round(v, 2), v) and v.min() >= 0
    assert (by_metric["up"][0] == 1.0).all()
    used = by_metric["filesystem_used_percent"][0]
    assert used[-1000:].mean() > used[:1000].mean()  # disks fill up


def test_it_generates_the_same_history_from_the_same_seed():
    specs = synthetic.catalog(5)
    a = synthetic.generate_server(specs, plan(), seed=7, index=1)
    b = synthetic.generate_server(specs, plan(), seed=7, index=1)
    c = synthetic.generate_server(specs, plan(), seed=8, index=1)
    assert np.array_equal(a.values, b.values)
    assert np.array_equal(a.rollup_1h.sum, b.rollup_1h.sum)
    assert not np.array_equal(a.values, c.values)


def test_it_simulates_older_buckets_with_min_avg_max_in_order():
    specs = synthetic.catalog(20)
    history = synthetic.generate_server(specs, plan(days_5m=5, days_1h=20), seed=1, index=0)
    for tier in (history.rollup_5m, history.rollup_1h):
        avg = tier.sum / tier.count
        assert (tier.min <= avg + 1e-9 * np.abs(avg)).all()
        assert (avg <= tier.max + 1e-9 * np.abs(avg)).all()
        assert (tier.min <= tier.last).all() and (tier.last <= tier.max).all()


# -- the command ----------------------------------------------------------------


@pytest.mark.django_db
def test_it_writes_the_expected_rows_in_every_tier():
    output = generate()
    p = plan()
    servers = list(Server.objects.filter(name__startswith="synthetic-").order_by("name"))
    assert [s.name for s in servers] == ["synthetic-001", "synthetic-002"]
    assert all(s.status == Server.Status.UP and s.last_seen for s in servers)
    assert {s.location.name for s in servers} == {"dc-1"}
    series = list(Series.objects.filter(server__in=servers).order_by("pk"))
    assert len(series) == 10
    fs = next(s for s in series if s.metric == "filesystem_used_percent")
    assert fs.labels == {"mountpoint": "/"} and fs.labels_key == "mountpoint=/"

    windows = (p.hot_start - p.raw_start) // settings.HISTORY_BLOCK_SECONDS
    for s in series:
        assert count("metrics_block", s.pk) == windows
        assert count("metrics_rollup5m", s.pk) == 2 * 288
        assert count("metrics_rollup1h", s.pk) == 3 * 24
        ts, values = raw_samples(s.pk)
        # Every 10 s from the first raw window to now, each sample once.
        assert np.array_equal(np.diff(ts), np.full(len(ts) - 1, 10))
        assert p.raw_start <= ts[0] < p.raw_start + 10 and NOW - 10 < ts[-1] <= NOW
        assert (s.last_ts, s.last_value) == (ts[-1], values[-1])
        hot = count("metrics_sample", s.pk)
        assert hot == (ts >= p.hot_start).sum() and hot >= 2 * 360
    assert "raw samples" in output and "2/2 servers" in output


@pytest.mark.django_db
def test_it_keeps_blocks_below_the_hot_part_and_hot_rows_above():
    generate()
    p = plan()
    window = settings.HISTORY_BLOCK_SECONDS
    starts = rows("SELECT DISTINCT start FROM metrics_block ORDER BY start")
    assert [r[0] for r in starts] == list(range(p.raw_start, p.hot_start, window))
    bounds = rows("SELECT MIN(first_ts - start), MAX(last_ts - start) FROM metrics_block")[0]
    assert bounds[0] >= 0 and bounds[1] < window
    assert rows("SELECT MIN(ts) FROM metrics_sample")[0][0] >= p.hot_start


@pytest.mark.django_db
def test_it_computes_rollups_from_the_raw_samples_where_they_exist():
    generate()
    p = plan()
    for s in Series.objects.all():
        ts, values = raw_samples(s.pk)
        for table, width, end in (
            ("metrics_rollup5m", 300, p.end_5m),
            ("metrics_rollup1h", 3600, p.end_1h),
        ):
            keep = ts < end
            expected = aggregate(ts[keep], values[keep], width)
            stored = stored_rollups(table, s.pk)
            stored = stored[stored[:, 0] >= p.raw_start]
            assert np.array_equal(stored[:, 0], expected.ts)
            assert np.array_equal(stored[:, 1], expected.min)
            assert np.array_equal(stored[:, 2], expected.max)
            assert stored[:, 3] == pytest.approx(expected.sum, rel=1e-12)
            assert np.array_equal(stored[:, 4], expected.count)
            assert np.array_equal(stored[:, 5], expected.last)


@pytest.mark.django_db
def test_it_keeps_every_bucket_consistent_including_the_simulated_ones():
    generate()
    p = plan()
    for table, width in (("metrics_rollup5m", 300), ("metrics_rollup1h", 3600)):
        for s in Series.objects.all():
            r = stored_rollups(table, s.pk)
            avg = r[:, 3] / r[:, 4]
            assert (r[:, 1] <= avg + 1e-9 * np.abs(avg)).all()
            assert (avg <= r[:, 2] + 1e-9 * np.abs(avg)).all()
            assert (r[:, 4] == width // 10).all()
            # Contiguous buckets up to the watermark.
            assert np.array_equal(np.diff(r[:, 0]), np.full(len(r) - 1, width))
        assert rows(f"SELECT MAX(ts) FROM {table}")[0][0] == (  # noqa: S608
            p.end_5m - 300 if width == 300 else p.end_1h - 3600
        )
    # Where both tiers are simulated, each hour is its twelve 5-minute buckets.
    s = Series.objects.get(metric="cpu_usage_percent", server__name="synthetic-001")
    five, hour = stored_rollups("metrics_rollup5m", s.pk), stored_rollups("metrics_rollup1h", s.pk)
    h = hour[(hour[:, 0] >= five[0, 0]) & (hour[:, 0] < p.raw_start)][0]
    parts = five[(five[:, 0] >= h[0]) & (five[:, 0] < h[0] + 3600)]
    assert len(parts) == 12
    assert (h[1], h[2], h[4], h[5]) == (parts[:, 1].min(), parts[:, 2].max(), 360, parts[-1, 5])


@pytest.mark.django_db
def test_it_sets_the_watermarks():
    generate()
    p = plan()
    assert state.get(state.ROLLUP_5M) == NOW - NOW % 300 == p.end_5m
    assert state.get(state.ROLLUP_1H) == NOW - NOW % 3600
    assert state.get(state.COMPACTED) == p.hot_start
    assert p.hot_start % settings.HISTORY_BLOCK_SECONDS == 0
    assert NOW - p.hot_start >= 2 * 3600


@pytest.mark.django_db
def test_it_refuses_to_run_over_servers_of_the_prefix():
    generate()
    with pytest.raises(CommandError, match="--replace"):
        generate()
    assert Server.objects.count() == 2
    # Another prefix is another set of servers.
    generate(prefix="demo-", location_size=1)
    assert Server.objects.filter(name__startswith="demo-").count() == 2
    assert Location.objects.filter(name__in=["dc-1", "dc-2"]).count() == 2


@pytest.mark.django_db
def test_it_replaces_the_servers_of_the_prefix_and_keeps_the_others():
    other = make_server("web-1")
    store(other, "load1", [(NOW - 60, 1.5)])
    generate()
    old_ids = set(Series.objects.filter(server__name__startswith="synthetic-").values_list("pk"))
    before = {t: count(t) for t in ("metrics_block", "metrics_rollup5m", "metrics_rollup1h")}
    output = generate(replace=True, servers=1)
    assert "Deleted 2 servers" in output
    assert Server.objects.filter(name__startswith="synthetic-").count() == 1
    new_ids = set(Series.objects.filter(server__name__startswith="synthetic-").values_list("pk"))
    assert not old_ids & new_ids
    for table, n in before.items():
        assert count(table) == n // 2
    # No history is left without its series; the other server's sample stays.
    for table in ("metrics_sample", "metrics_block", "metrics_rollup5m", "metrics_rollup1h"):
        orphans = rows(
            f"SELECT COUNT(*) FROM {table} WHERE series_id NOT IN (SELECT id FROM metrics_series)"  # noqa: S608
        )
        assert orphans == [(0,)]
    assert rows(
        "SELECT value FROM metrics_sample WHERE series_id = %s",
        [Series.objects.get(server=other).pk],
    ) == [(1.5,)]


@pytest.mark.django_db
def test_it_empties_the_history_tables_fast_when_it_owns_every_series():
    generate()
    generate(replace=True)
    assert Series.objects.count() == 10
    assert count("metrics_rollup1h") == 10 * 72
