"""Reading rule windows from every tier gives what the raw samples say.

The readers seek each series in the key and take old parts of a window from
the rollups; these tests write raw samples through the real writer, run the
real rollup and compaction, and compare with numpy on the samples themselves.
"""

from __future__ import annotations

import numpy as np
import pytest

from vigil.alerts import evaluate as ev
from vigil.alerts import fetch
from vigil.alerts.models import Rule, ServerGroup
from vigil.metrics import compaction, rollup, state
from vigil.servers.models import Location, Server, Tag
from vigil.testing import make_server, store

pytestmark = pytest.mark.django_db

T0 = 1_790_006_400  # on an hour and a block window
STEP = 60


def samples(hours: float, slope: float, base: float, seed: int) -> list[tuple[int, float]]:
    """A rising line with noise, one sample a minute from T0."""
    rng = np.random.default_rng(seed)
    ts = np.arange(T0, T0 + int(hours * 3600), STEP)
    values = np.round(base + slope * (ts - T0) + rng.normal(0, 0.3, len(ts)), 2)
    return list(zip(ts.tolist(), values.tolist(), strict=True))


def series_ids(metric: str) -> np.ndarray:
    from vigil.metrics.models import Series

    return np.array(
        sorted(Series.objects.filter(metric=metric).values_list("pk", flat=True)), dtype=np.int64
    )


@pytest.fixture
def eight_hours():
    """Two servers with eight hours of a rising disk, rolled up to the end."""
    written = {}
    for i, name in enumerate(["db-1", "db-2"]):
        points = samples(8, slope=(i + 1) / 3600, base=40 + 10 * i, seed=i)
        store(make_server(name), "filesystem_used_percent", points, {"mountpoint": "/"})
        written[name] = points
    end = T0 + 8 * 3600 - STEP
    rollup.run(end)
    return written, end


def test_it_reads_a_long_window_from_hour_and_five_minute_rollups_and_hot_rows(eight_hours):
    written, end = eight_hours
    start = end - 6 * 3600 - 90  # not on a bucket boundary
    tables = [p.table for p in fetch.pieces(start, end)]
    assert "metrics_rollup1h" in tables and tables[-1] == "metrics_sample"
    ids = series_ids("filesystem_used_percent")
    got = fetch.window_sums("filesystem_used_percent", ids, start, end)
    # A bucket that starts before the window is left out as a whole.
    first = -(-start // 300) * 300
    for i, name in enumerate(["db-1", "db-2"]):
        ts = np.array([t for t, _ in written[name] if first <= t <= end], dtype=np.float64)
        values = np.array([v for t, v in written[name] if first <= t <= end])
        assert got.sums.n[i] == len(ts)
        assert got.sums.sv[i] == pytest.approx(values.sum())
        assert (got.low[i], got.high[i]) == (values.min(), values.max())
        slope = ev.fit(got.sums)[0][i]
        assert slope == pytest.approx(np.polyfit(ts, values, 1)[0], rel=0.01)


def test_a_window_of_only_hot_rows_sums_them_exactly(eight_hours):
    written, end = eight_hours
    start = state.get(state.ROLLUP_5M) + 30
    assert [p.table for p in fetch.pieces(start, end)] == ["metrics_sample"]
    got = fetch.window_sums(
        "filesystem_used_percent", series_ids("filesystem_used_percent"), start, end
    )
    values = np.array([v for t, v in written["db-2"] if start <= t <= end])
    assert got.sums.n[1] == len(values)
    assert got.avg[1] == pytest.approx(values.mean())


def test_a_series_without_samples_in_the_window_has_no_sums(eight_hours):
    _, end = eight_hours
    store(make_server("quiet-1"), "filesystem_used_percent", [(T0, 10.0)], {"mountpoint": "/"})
    ids = series_ids("filesystem_used_percent")
    got = fetch.window_sums("filesystem_used_percent", ids, end - 600, end)
    assert got.sums.n.tolist() == [10.0, 10.0, 0.0]
    assert np.isnan(got.sums.sv[2]) and np.isnan(got.low[2]) and np.isnan(got.high[2])
    empty = fetch.window_sums("filesystem_used_percent", ids[:0], end - 600, end)
    assert len(empty.sums.n) == 0


def test_percentile_windows_read_hot_rows_and_blocks_alike(eight_hours):
    written, end = eight_hours
    # Compaction moves the older windows into blocks.
    compaction.run(end + 3 * 3600)
    compacted = state.get(state.COMPACTED)
    assert compacted is not None and T0 < compacted < end
    ids = series_ids("filesystem_used_percent")
    for start in (compacted + 600, compacted - 1800):  # hot only, then blocks too
        window = fetch.window_samples(ids, start, end)
        for i, name in enumerate(["db-1", "db-2"]):
            own = slice(window.offsets[i], window.offsets[i + 1])
            expected = [(t, v) for t, v in written[name] if start <= t <= end]
            assert list(zip(window.ts[own].tolist(), window.values[own].tolist(), strict=True)) == (
                expected
            )


def test_targets_keep_the_scope_and_the_matchers():
    east, west = Location.objects.create(name="east"), Location.objects.create(name="west")
    tag = Tag.objects.create(name="db")
    group = ServerGroup.objects.create(name="primaries")
    servers = {
        "e1": make_server("e1", location=east),
        "e2": make_server("e2", location=east),
        "w1": make_server("w1", location=west),
        "old": make_server("old", location=east, status=Server.Status.RETIRED),
    }
    servers["e2"].tags.add(tag)
    group.servers.add(servers["w1"])
    for server in servers.values():
        for mount in ("/", "/var"):
            store(server, "filesystem_used_percent", [(T0, 50.0)], {"mountpoint": mount})

    def watched(**kw) -> list[tuple[str, str]]:
        rule = Rule(name="r", metric="filesystem_used_percent", threshold=90, **kw)
        found = fetch.targets(rule)
        names = dict(Server.objects.values_list("pk", "name"))
        assert found.ids.tolist() == sorted(found.ids.tolist())
        return sorted(
            (names[int(s)], found.labels[i]["mountpoint"]) for i, s in enumerate(found.server_ids)
        )

    assert watched(matchers="mountpoint=/") == [("e1", "/"), ("e2", "/"), ("w1", "/")]
    assert watched(scope="location", location=east, matchers="mountpoint!~/v.*") == [
        ("e1", "/"),
        ("e2", "/"),
    ]
    assert watched(scope="tag", tag=tag) == [("e2", "/"), ("e2", "/var")]
    assert watched(scope="group", group=group, matchers="mountpoint=/var") == [("w1", "/var")]
    assert watched(scope="server", server=servers["old"]) == []
    assert fetch.scope_server_ids(Rule(scope="location", location=east)) == {
        servers["e1"].pk,
        servers["e2"].pk,
    }


def test_target_labels_are_decoded_when_read():
    server = make_server("web-1")
    store(server, "disk_read_bytes_per_second", [(T0, 1.0)], {"device": "sda"})
    store(server, "disk_read_bytes_per_second", [(T0, 2.0)], {"device": "nvme0n1"})
    found = fetch.targets(Rule(name="r", metric="disk_read_bytes_per_second", threshold=1))
    assert sorted(label["device"] for label in found.labels) == ["nvme0n1", "sda"]
    assert found.labels[0] is found.labels[0]  # decoded once
    picked = found.take(np.array([False, True]))
    assert list(picked.labels) == [found.labels[1]]
    assert picked.last_value.tolist() == [found.last_value[1]]
