"""Two evaluators at once, below the pass-level lock: each rule's row lock
and the locked alert rows of dispatch must be enough on their own."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from django.db import connection

from vigil.alerts import dispatch
from vigil.alerts.engine import Context, at, evaluate_rule
from vigil.alerts.models import Alert, AlertEvent, Notification, Rule
from vigil.testing import make_server, store

T0 = 1_790_000_040


@pytest.mark.django_db(transaction=True)
def test_two_threads_evaluating_and_dispatching_at_once_fire_and_notify_once():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has a single writer: concurrency is PostgreSQL's question")
    Rule.objects.all().delete()
    rules = [
        Rule.objects.create(name=f"cpu above {k}", metric="cpu_usage_percent", threshold=k)
        for k in range(5)
    ]
    for k in range(30):
        store(make_server(f"s{k}"), "cpu_usage_percent", [(T0, 50.0)])
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def evaluator(offset: int) -> None:
        try:
            start.wait()
            for t in (T0 + offset, T0 + 40 + offset):
                ctx = Context(at(t), np.empty(0, dtype=np.int64))
                for rule in rules:
                    evaluate_rule(rule, ctx)
                dispatch.run(at(t))
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=evaluator, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert Alert.objects.filter(state=Alert.State.FIRING).count() == 5 * 30
    assert AlertEvent.objects.count() == 5 * 30
    assert sorted(len(n.items) for n in Notification.objects.filter(kind="firing")) == [30] * 5
