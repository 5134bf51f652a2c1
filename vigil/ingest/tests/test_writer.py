from __future__ import annotations

import pytest
from django.db import transaction

from vigil.ingest import writer
from vigil.ingest.parsers.base import COUNTER, SeriesPoints
from vigil.metrics.models import Sample
from vigil.testing import make_server

T = 1_790_000_000
pytestmark = pytest.mark.django_db


def write(items, derive=None) -> int:
    with transaction.atomic():
        return writer.write_now(items, derive=derive)


def stored(metric: str) -> list[tuple[int, float]]:
    rows = Sample.objects.filter(series__metric=metric).order_by("ts")
    return list(rows.values_list("ts", "value"))


def test_counters_are_stored_as_rates_across_requests():
    server = make_server("web-1")
    rx = ("node_network_receive_bytes_total", (("device", "eth0"),))

    def reading(ts, value):
        return [(server.pk, SeriesPoints(None, *rx, [ts], [value], COUNTER))]

    assert write(reading(T, 1000)) == 0
    assert write(reading(T + 10, 6000)) == 1
    assert write(reading(T + 20, 6000)) == 1
    assert write(reading(T + 30, 100)) == 0  # a reset: no rate for that interval
    assert write(reading(T + 40, 600)) == 1
    assert stored(rx[0]) == [(T + 10, 500.0), (T + 20, 0.0), (T + 40, 50.0)]


def test_a_repeated_counter_request_changes_nothing():
    server = make_server("web-1")
    batch = [(server.pk, SeriesPoints(None, "c_total", (), [T, T + 10], [0, 100], COUNTER))]
    write(batch)
    write(batch)
    assert stored("c_total") == [(T + 10, 10.0)]


def test_a_deriver_adds_canonical_series_and_can_read_siblings_sent_before():
    server = make_server("web-1")

    def derive(items, lookup):
        out = []
        for server_id, sp in items:
            if sp.metric == "memory.used":
                free = {
                    ts: v for _, ts, v in lookup.values(server_id, "memory.free", sp.timestamps)
                }
                pct = [
                    100 * u / (u + free[t])
                    for t, u in zip(sp.timestamps, sp.values, strict=True)
                    if t in free
                ]
                ts = [t for t in sp.timestamps if t in free]
                out.append((server_id, SeriesPoints(None, "memory_used_percent", (), ts, pct)))
        return out

    write([(server.pk, SeriesPoints(None, "memory.free", (), [T], [75.0]))], derive)
    write([(server.pk, SeriesPoints(None, "memory.used", (), [T], [25.0]))], derive)
    assert stored("memory_used_percent") == [(T, 25.0)]
