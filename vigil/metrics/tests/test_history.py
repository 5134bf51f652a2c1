"""Rollups, compaction and retention through the real database (both kinds)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from django.db import connection, connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.metrics import codec, compaction, partitions, raw, retention, rollup, state
from vigil.metrics.models import (
    Block,
    HistoryState,
    Late,
    Retention,
    Rollup1h,
    Rollup5m,
    Sample,
    Series,
)
from vigil.metrics.tasks import maintain_history
from vigil.testing import make_server, store

HOUR = 3600
# A base far enough back that every test sample is settled, yet inside retention.
BASE = int(time.time()) // 7200 * 7200 - 12 * HOUR


def insert_hot(rows: list[tuple[int, int, float]]) -> None:
    """Samples as if they arrived on time (no late marks), straight into the hot table."""
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO metrics_sample (series_id, ts, value) VALUES (%s, %s, %s)", rows
        )


def make_series(server, metric: str = "cpu_usage_percent", **labels) -> Series:
    return Series.objects.create(server=server, metric=metric, labels=labels)


def brute_force(samples: dict[int, float], width: int) -> dict[int, tuple]:
    """min, max, sum, count, last of each bucket, with plain loops."""
    out: dict[int, list] = {}
    for ts in sorted(samples):
        v = samples[ts]
        start = ts - ts % width
        if start not in out:
            out[start] = [v, v, 0.0, 0, v]
        b = out[start]
        b[0], b[1], b[2], b[3], b[4] = min(b[0], v), max(b[1], v), b[2] + v, b[3] + 1, v
    return {k: tuple(b) for k, b in out.items()}


def stored(model, series: Series) -> dict[int, tuple]:
    return {
        r.ts: (r.min, r.max, r.sum, r.count, r.last)
        for r in model.objects.filter(series=series).order_by("ts")
    }


def assert_same(got: dict[int, tuple], want: dict[int, tuple]) -> None:
    assert got.keys() == want.keys()
    for ts, (mn, mx, sm, n, last) in want.items():
        g = got[ts]
        assert (g[0], g[1], g[3], g[4]) == (mn, mx, n, last)
        assert g[2] == pytest.approx(sm)


def roll_until_done(now: float) -> None:
    for _ in range(100):
        stats = rollup.run(now)
        if not (stats.buckets_5m or stats.buckets_1h or stats.late_hours):
            return
    raise AssertionError("rollup never caught up")


def clear_history() -> None:
    with connection.cursor() as cursor:
        for table in ["metrics_sample", "metrics_block", "metrics_rollup5m", "metrics_rollup1h"]:
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608
    Late.objects.all().delete()
    HistoryState.objects.all().delete()


samples_strategy = st.dictionaries(
    st.integers(min_value=0, max_value=3 * HOUR - 1),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    min_size=1,
    max_size=200,
)


@pytest.mark.django_db
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(offsets=samples_strategy)
def test_rollups_equal_a_brute_force_computation_on_random_data(offsets):
    clear_history()
    server = Series.objects.first().server if Series.objects.exists() else make_server()
    series = make_series(server, "cpu", n=str(Series.objects.count()))
    samples = {BASE + k: v for k, v in offsets.items()}
    insert_hot([(series.pk, ts, v) for ts, v in samples.items()])
    state.put(state.ROLLUP_5M, BASE)
    state.put(state.ROLLUP_1H, BASE)
    roll_until_done(BASE + 4 * HOUR)
    assert_same(stored(Rollup5m, series), brute_force(samples, 300))
    assert_same(stored(Rollup1h, series), brute_force(samples, HOUR))


@pytest.mark.django_db
def test_rollup_closes_only_settled_buckets_and_running_twice_changes_nothing():
    series = make_series(make_server())
    insert_hot([(series.pk, BASE + i * 10, float(i)) for i in range(360)])
    state.put(state.ROLLUP_5M, BASE)
    state.put(state.ROLLUP_1H, BASE)
    # Twenty minutes in, buckets that ended less than late + margin ago stay open.
    rollup.run(BASE + 20 * 60)
    assert state.get(state.ROLLUP_5M) == BASE + 10 * 60
    roll_until_done(BASE + 2 * HOUR)
    first = (stored(Rollup5m, series), stored(Rollup1h, series))
    roll_until_done(BASE + 2 * HOUR)
    assert (stored(Rollup5m, series), stored(Rollup1h, series)) == first
    assert len(first[0]) == 12 and first[1][BASE][3] == 360


@pytest.mark.django_db
def test_late_samples_correct_the_buckets_they_fall_in():
    server = make_server()
    series = make_series(server)
    insert_hot([(series.pk, BASE + i * 10, 1.0) for i in range(360)])
    state.put(state.ROLLUP_5M, BASE)
    state.put(state.ROLLUP_1H, BASE)
    roll_until_done(time.time())
    assert stored(Rollup5m, series)[BASE][1] == 1.0

    # An agent's spool replays a spike, and a sample it had sent already.
    store(server, "cpu_usage_percent", [(BASE + 5, 99.0), (BASE + 10, 1.0)])
    assert Late.objects.filter(kind=Late.ROLLUP, series=series, start=BASE).exists()
    roll_until_done(time.time())
    bucket = stored(Rollup5m, series)[BASE]
    assert bucket[1] == 99.0 and bucket[3] == 31
    assert stored(Rollup1h, series)[BASE][3] == 361
    assert not Late.objects.filter(kind=Late.ROLLUP).exists()


@pytest.mark.django_db
def test_compaction_moves_old_samples_into_blocks_and_reads_do_not_change():
    series = make_series(make_server())
    rows = [(series.pk, BASE + i * 10, round(float(i % 37) * 1.5, 1)) for i in range(1440)]
    insert_hot(rows)
    state.put(state.ROLLUP_5M, BASE)
    state.put(state.ROLLUP_1H, BASE)
    before = raw.read([series.pk], BASE, BASE + 4 * HOUR)[series.pk]
    now = BASE + 6 * HOUR
    roll_until_done(now)
    stats = compaction.run(now)

    assert stats.windows == 2 and stats.samples == 1440
    assert not Sample.objects.filter(series=series).exists()
    blocks = list(Block.objects.filter(series=series).order_by("start"))
    assert [b.start for b in blocks] == [BASE, BASE + 7200]
    assert sum(b.count for b in blocks) == 1440
    after = raw.read([series.pk], BASE, BASE + 4 * HOUR)[series.pk]
    assert np.array_equal(after[0], before[0])
    assert np.array_equal(after[1].view(np.int64), before[1].view(np.int64))
    assert stats.bytes / stats.samples < 4


@pytest.mark.django_db
def test_a_sample_re_sent_after_compaction_is_stored_once():
    server = make_server()
    series = make_series(server)
    insert_hot([(series.pk, BASE + i * 10, float(i)) for i in range(720)])
    state.put(state.ROLLUP_5M, BASE)
    state.put(state.ROLLUP_1H, BASE)
    now = time.time()
    roll_until_done(now)
    compaction.run(now)
    rollups = stored(Rollup5m, series)

    # The agent re-sends one stored sample and one it never delivered.
    store(server, "cpu_usage_percent", [(BASE + 100, 10.0), (BASE + 105, 500.0)])
    ts, values = raw.read([series.pk], BASE, BASE + 7199)[series.pk]
    assert len(ts) == 721 and list(ts).count(BASE + 100) == 1

    roll_until_done(now)
    compaction.run(now)
    assert not Sample.objects.filter(series=series).exists()
    assert not Late.objects.exists()
    ts, values = codec.decode(bytes(Block.objects.get(series=series, start=BASE).data))
    assert len(ts) == 721 and values[np.searchsorted(ts, BASE + 105)] == 500.0
    rollups[BASE] = (0.0, 500.0, sum(range(30)) + 500.0, 31, 29.0)
    assert_same(stored(Rollup5m, series), rollups)


@pytest.mark.django_db
def test_compaction_waits_for_the_rollup_it_feeds():
    series = make_series(make_server())
    insert_hot([(series.pk, BASE + i * 10, 1.0) for i in range(720)])
    assert compaction.run(BASE + 6 * HOUR).skipped
    state.put(state.ROLLUP_5M, BASE + 3600)
    assert compaction.run(BASE + 6 * HOUR).windows == 0
    assert Sample.objects.filter(series=series).count() == 720


@pytest.mark.django_db
def test_retention_keeps_each_tier_for_its_own_age():
    Retention.objects.create(raw_days=2, rollup_5m_days=4, rollup_1h_days=8)
    series = make_series(make_server())
    now = BASE
    day = 86400
    insert_hot([(series.pk, now - 2 * day - 1, 1.0), (series.pk, now - 2 * day, 2.0)])
    window = 7200
    old_block = now - 2 * day - window  # ends exactly at the raw horizon: goes
    kept_block = old_block + 1 * window
    for start in (old_block, kept_block):
        data = codec.encode(np.array([start], dtype=np.int64), np.array([1.0]))
        Block.objects.create(
            series=series, start=start, first_ts=start, last_ts=start, count=1, data=data
        )
    for model, days in ((Rollup5m, 4), (Rollup1h, 8)):
        for ts in (now - days * day - 1, now - days * day):
            model.objects.create(series=series, ts=ts, min=1, max=1, sum=1, count=1, last=1)

    stats = retention.run(now)

    assert list(Sample.objects.filter(series=series).values_list("ts", flat=True)) == [
        now - 2 * day
    ]
    assert list(Block.objects.filter(series=series).values_list("start", flat=True)) == [kept_block]
    assert list(Rollup5m.objects.values_list("ts", flat=True)) == [now - 4 * day]
    assert list(Rollup1h.objects.values_list("ts", flat=True)) == [now - 8 * day]
    assert stats.longest_transaction < 0.5


@pytest.mark.django_db
def test_deleting_a_series_deletes_its_history():
    series = make_series(make_server())
    insert_hot([(series.pk, BASE, 1.0)])
    Rollup5m.objects.create(series=series, ts=BASE, min=1, max=1, sum=1, count=1, last=1)
    Rollup1h.objects.create(series=series, ts=BASE, min=1, max=1, sum=1, count=1, last=1)
    data = codec.encode(np.array([BASE - 7200], dtype=np.int64), np.array([1.0]))
    Block.objects.create(
        series=series,
        start=BASE - 7200,
        first_ts=BASE - 7200,
        last_ts=BASE - 7200,
        count=1,
        data=data,
    )
    series.delete()
    for model in (Sample, Block, Rollup5m, Rollup1h):
        assert not model.objects.exists()


@pytest.mark.django_db
def test_maintenance_runs_every_step_and_the_admin_edits_retention(admin_client):
    series = make_series(make_server())
    insert_hot([(series.pk, BASE + i * 10, 2.0) for i in range(720)])
    state.put(state.ROLLUP_5M, BASE)
    state.put(state.ROLLUP_1H, BASE)
    result = maintain_history(time.time())
    assert result["rollup"]["buckets_5m"] > 0
    assert result["compaction"]["windows"] >= 1
    response = admin_client.get("/admin/metrics/retention/add/")
    assert response.status_code == 200 and b'value="14"' in response.content


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


@pytest.mark.django_db
def test_partitions_are_created_ahead_and_dropped_once_compacted():
    if not is_postgresql():
        pytest.skip("time partitions exist on PostgreSQL only")
    series = make_series(make_server())
    # Samples that arrived before their window's partition existed.
    insert_hot([(series.pk, BASE + i * 10, 1.0) for i in range(720)])
    created = partitions.ensure(BASE)
    assert BASE in created and BASE + 7200 in created
    assert max(created) >= BASE + 3600 + 7200
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {partitions.name(BASE)}")  # noqa: S608
        assert cursor.fetchone()[0] == 720
        cursor.execute(f"SELECT COUNT(*) FROM {partitions.DEFAULT}")  # noqa: S608
        assert cursor.fetchone()[0] == 0
    assert partitions.ensure(BASE) == []

    state.put(state.ROLLUP_5M, BASE)
    state.put(state.ROLLUP_1H, BASE)
    now = time.time()
    roll_until_done(now)
    compaction.run(now)
    assert BASE not in partitions.existing()
    assert Block.objects.get(series=series, start=BASE).count == 720

    # A window past the raw tier's age goes by DROP TABLE too.
    Retention.objects.create(raw_days=1, rollup_5m_days=4, rollup_1h_days=8)
    old = BASE - 3 * 86400
    partitions.create(old)
    insert_hot([(series.pk, old + 5, 1.0)])
    stats = retention.run(now)
    assert old not in partitions.existing() and stats.partitions_dropped == 1
    assert not Sample.objects.filter(ts=old + 5).exists()


@pytest.mark.django_db(transaction=True)
def test_two_rollup_workers_at_once_give_the_same_buckets():
    series = make_series(make_server())
    samples = {BASE + i * 7: float((i * 7919) % 101) for i in range(1500)}
    insert_hot([(series.pk, ts, v) for ts, v in samples.items()])
    state.put(state.ROLLUP_5M, BASE)
    state.put(state.ROLLUP_1H, BASE)
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        try:
            barrier.wait()
            roll_until_done(BASE + 4 * HOUR)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert_same(stored(Rollup5m, series), brute_force(samples, 300))
    assert_same(stored(Rollup1h, series), brute_force(samples, HOUR))


@pytest.mark.django_db
def test_a_damaged_block_costs_its_own_window_not_the_whole_read(caplog):
    series = make_series(make_server())
    for n, start in enumerate((BASE - 14400, BASE - 7200)):
        data = codec.encode(np.array([start, start + 10], dtype=np.int64), np.array([1.0, 2.0]))
        if n == 0:
            data = data[:10]
        Block.objects.create(
            series=series, start=start, first_ts=start, last_ts=start + 10, count=2, data=data
        )
    ts, values = raw.read([series.pk], BASE - 14400, BASE)[series.pk]
    assert list(ts) == [BASE - 7200, BASE - 7190]
    assert "unreadable history block" in caplog.text


@pytest.mark.django_db
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    offsets=st.lists(st.integers(0, 6 * 7200), min_size=1, max_size=300, unique=True),
    compact_windows=st.integers(0, 5),
    resent=st.lists(st.integers(0, 299), max_size=20),
    step=st.sampled_from([1, 7, 60, 300, 1000, 7200]),
)
def test_read_buckets_equals_bucketing_every_sample_once(offsets, compact_windows, resent, step):
    clear_history()
    server = Series.objects.first().server if Series.objects.exists() else make_server()
    series = make_series(server, "cpu", n=str(Series.objects.count()))
    start = BASE - 6 * 7200
    samples = {start + o: float(o % 97) for o in sorted(offsets)}
    insert_hot([(series.pk, t, v) for t, v in samples.items()])
    # Some windows compacted, then a few samples re-sent into the hot table.
    state.put(state.ROLLUP_5M, BASE + 7200)
    for w in range(compact_windows):
        compaction.compact_chunk([series.pk], start + w * 7200, compaction.CompactionStats())
    stamps = sorted(samples)
    again = [stamps[i % len(stamps)] for i in resent]
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO metrics_sample (series_id, ts, value) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            [(series.pk, t, samples[t]) for t in again],
        )
    lo, hi = start + 100, BASE
    want_ts = np.array([t for t in stamps if lo <= t <= hi], dtype=np.int64)
    got = raw.read_buckets([series.pk], lo, hi, step).get(series.pk)
    if not len(want_ts):
        assert got is None
        return
    want, want_stamps = raw.stamped(want_ts, np.array([samples[t] for t in want_ts]), step)
    b, got_stamps = got
    assert list(b.ts) == list(want.ts) and list(b.count) == list(want.count)
    assert list(got_stamps) == list(want_stamps)
    assert np.allclose(b.sum, want.sum) and list(b.min) == list(want.min)
    assert list(b.max) == list(want.max)


@pytest.mark.django_db
def test_a_block_rewritten_by_a_late_sample_is_read_anew_not_from_the_cache():
    series = make_series(make_server())
    start = BASE - 7200
    ts = np.array([start, start + 10], dtype=np.int64)
    first = codec.encode(ts, np.array([1.0, 2.0]))
    Block.objects.create(
        series=series, start=start, first_ts=start, last_ts=start + 10, count=2, data=first
    )
    assert list(raw.read([series.pk], start, BASE)[series.pk][1]) == [1.0, 2.0]
    # Same window, same count and times: only the bytes differ.
    Block.objects.filter(series=series, start=start).update(
        data=codec.encode(ts, np.array([1.0, 9.0]))
    )
    assert list(raw.read([series.pk], start, BASE)[series.pk][1]) == [1.0, 9.0]
    assert raw.BLOCK_CACHE.size > 0


@pytest.mark.django_db
def test_late_work_is_bounded_per_run_so_the_other_steps_get_their_turn(monkeypatch):
    server = make_server()
    series = make_series(server)
    store(server, "cpu_usage_percent", [(BASE + 5, 1.0)])
    monkeypatch.setattr(rollup, "LATE_SECONDS_PER_RUN", 0.0)
    assert rollup.run(time.time()).late_hours == 0
    assert Late.objects.filter(kind=Late.ROLLUP, series=series).exists()
    monkeypatch.setattr(rollup, "LATE_SECONDS_PER_RUN", 20.0)
    assert rollup.run(time.time()).late_hours == 1
