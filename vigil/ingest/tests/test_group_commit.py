from __future__ import annotations

import threading

import pytest

from vigil.ingest import writer
from vigil.ingest.parsers.base import SeriesPoints
from vigil.metrics.models import Sample
from vigil.testing import make_server

T0 = 1_790_000_000


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_are_committed_together_and_each_answered():
    server = make_server("web-1")
    committer = writer.GroupCommitter(max_rows=100_000, queue_max_rows=1_000_000)
    results: list[int] = []
    errors: list[BaseException] = []

    def client(n: int) -> None:
        try:
            for i in range(10):
                sp = SeriesPoints(
                    None, f"m{n}", (), [T0 + i * 100 + j for j in range(50)], [1.0] * 50
                )
                results.append(committer.submit([(server.pk, sp)]))
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    committer.close()
    assert errors == []
    assert results == [50] * 80
    assert Sample.objects.count() == 4000
    assert committer.batches_committed == 80
    # Batches arriving while a group commits wait and go in the next group.
    assert committer.groups_committed < 80


@pytest.mark.django_db(transaction=True)
def test_a_batch_that_fails_does_not_fail_the_others_of_its_group():
    server = make_server("web-1")
    committer = writer.GroupCommitter(max_rows=100_000, queue_max_rows=1_000_000)
    good = SeriesPoints(None, "ok", (), [T0], [1.0])
    # A server id that does not exist: the series' foreign key refuses it.
    bad = SeriesPoints(None, "orphan", (), [T0], [1.0])
    outcomes: dict[str, object] = {}

    def submit(name, items):
        try:
            outcomes[name] = committer.submit(items)
        except Exception as exc:  # the failing batch is expected to raise
            outcomes[name] = exc

    threads = [
        threading.Thread(target=submit, args=("bad", [(server.pk + 999, bad)])),
        threading.Thread(target=submit, args=("good", [(server.pk, good)])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    committer.close()
    assert outcomes["good"] == 1
    assert isinstance(outcomes["bad"], Exception)
    assert list(Sample.objects.values_list("series__metric", flat=True)) == ["ok"]
