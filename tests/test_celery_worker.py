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


def test_two_workers_maintaining_history_at_once_roll_up_each_bucket_once(worker):
    from vigil.metrics import state
    from vigil.metrics.celery_tasks import maintain_history
    from vigil.metrics.models import Block, Rollup1h, Rollup5m, Series

    server = make_server("history")
    series = Series.objects.create(server=server, metric="cpu_usage_percent", labels={})
    base = int(time.time()) // 7200 * 7200 - 6 * 3600
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO metrics_sample (series_id, ts, value) VALUES (%s, %s, %s)",
            [(series.pk, base + i * 10, float(i % 7)) for i in range(1440)],
        )
    state.put(state.ROLLUP_5M, base)
    state.put(state.ROLLUP_1H, base)

    results = [maintain_history.delay() for _ in range(2)]
    for r in results:
        r.get(timeout=60)
    maintain_history.delay().get(timeout=60)

    assert Rollup5m.objects.filter(series=series, ts__lt=base + 4 * 3600).count() == 48
    assert [r.count for r in Rollup1h.objects.filter(series=series).order_by("ts")][:4] == [360] * 4
    assert sum(b.count for b in Block.objects.filter(series=series)) == 1440
    assert not Sample.objects.filter(series=series).exists()


def test_two_workers_evaluating_alerts_at_once_fire_and_notify_each_alert_once(worker, settings):
    from vigil.alerts.celery_tasks import evaluate_alerts
    from vigil.alerts.models import Alert, AlertEvent, Notification, Rule
    from vigil.testing import store

    Rule.objects.all().delete()
    for k in range(6):
        Rule.objects.create(name=f"cpu above {k}", metric="cpu_usage_percent", threshold=k)
    now = int(time.time())
    for k in range(20):
        store(make_server(f"s{k}"), "cpu_usage_percent", [(now, 50.0)])

    # Passes 20 s apart (each due), sent at once and run in any order by two
    # worker processes, then passes late enough for the group wait to close.
    results = [evaluate_alerts.delay(now + k * 20) for k in range(6)]
    for r in results:
        r.get(timeout=60)
    for k in range(6, 9):
        evaluate_alerts.delay(now + k * 20).get(timeout=60)

    assert Alert.objects.filter(state=Alert.State.FIRING).count() == 6 * 20
    assert AlertEvent.objects.filter(kind="firing").count() == 6 * 20
    firing = Notification.objects.filter(kind="firing")
    assert firing.count() == 6
    assert sorted(len(n.items) for n in firing) == [20] * 6


def test_two_workers_given_one_delivery_many_times_send_it_once(transactional_db, settings):
    from vigil.alerts.models import Notification, Rule
    from vigil.notify.celery_tasks import deliver, deliver_due
    from vigil.notify.models import Channel, Delivery, Route
    from vigil.notify.tests import receivers
    from vigil.notify.tests.samples import WEBHOOK_SECRET, channel_settings

    settings.NOTIFY_ALLOWED_NETWORKS = "127.0.0.0/8"
    rule = Rule.objects.create(name="cpu", metric="cpu_usage_percent", threshold=90)
    with (
        receivers.running(receivers.Webhook(WEBHOOK_SECRET)) as hook,
        celery_worker(connection.settings_dict, VIGIL_NOTIFY_ALLOWED_NETWORKS="127.0.0.0/8"),
    ):
        config, secrets = channel_settings("webhook", hook.url)
        channel = Channel.objects.create(
            name="hook", kind="webhook", config=config, secrets=secrets
        )
        Route.objects.create(name="all", is_default=True).channels.add(channel)
        for k in range(5):
            Notification.objects.create(kind="firing", rule=rule, severity="warning", title=f"n{k}")
        # The beat task routes and hands each delivery to its own task; the
        # same deliveries are also handed out again, several times, at once.
        deliver_due.delay().get(timeout=60)
        ids = list(Delivery.objects.values_list("pk", flat=True))
        results = [deliver.delay(pk) for pk in ids for _ in range(4)]
        for r in results:
            r.get(timeout=60)
        deadline = time.monotonic() + 30
        while Delivery.objects.exclude(status="sent").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    assert Delivery.objects.filter(status="sent").count() == 5
    assert len(hook.requests) == 5
    assert len({r.header("X-Vigil-Delivery") for r in hook.requests}) == 5
    assert hook.problems() == []
