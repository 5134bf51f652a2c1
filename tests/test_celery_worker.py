"""The task functions through a real broker and a real Celery worker.

Runs when CELERY_BROKER_URL is set (CI's PostgreSQL pass sets it to Redis).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from vigil.metrics.models import Sample
from vigil.servers.models import Server
from vigil.testing import celery_worker, make_server, requires_celery_worker

pytestmark = requires_celery_worker()


@pytest.fixture
def worker(transactional_db):
    with celery_worker(connection.settings_dict) as app:
        yield app


def test_a_worker_runs_update_up_through_the_broker(worker):
    from vigil.servers.celery_tasks import update_up

    now = time.time()
    moment = datetime.fromtimestamp(now, tz=UTC)
    make_server("fresh", status="up", last_seen=moment - timedelta(seconds=5))
    make_server("late", status="up", last_seen=moment - timedelta(hours=1))

    result = update_up.delay(now).get(timeout=30)

    assert result == {"went_down": 1, "up_samples": 2}
    assert Server.objects.get(name="late").status == "down"
    values = dict(
        Sample.objects.filter(series__metric="up").values_list("series__server__name", "value")
    )
    assert values == {"fresh": 1.0, "late": 0.0}


def test_two_worker_processes_running_it_at_once_store_each_up_sample_once(worker):
    from vigil.servers.celery_tasks import update_up

    now = time.time()
    make_server("a", status="up", last_seen=datetime.fromtimestamp(now, tz=UTC))
    results = [update_up.delay(now) for _ in range(4)]
    for r in results:
        r.get(timeout=30)
    assert Sample.objects.filter(series__metric="up").count() == 1
