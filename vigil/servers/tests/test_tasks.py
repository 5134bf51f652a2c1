from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from vigil.metrics.models import Sample
from vigil.servers.models import Server
from vigil.servers.tasks import update_up
from vigil.testing import make_server

pytestmark = pytest.mark.django_db


def up_samples() -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    rows = Sample.objects.filter(series__metric="up").values_list(
        "series__server__name", "ts", "value"
    )
    for name, ts, value in rows.order_by("ts"):
        out.setdefault(name, []).append((ts, value))
    return out


def test_it_marks_overdue_servers_down_and_writes_up(settings):
    settings.SERVER_DOWN_AFTER_SECONDS = 60
    now = time.time()
    moment = datetime.fromtimestamp(now, tz=UTC)
    make_server("fresh", status="up", last_seen=moment - timedelta(seconds=10))
    make_server("late", status="up", last_seen=moment - timedelta(seconds=120))
    make_server("never")
    make_server("retired", status="retired", last_seen=moment - timedelta(days=2))

    assert update_up(now) == {"went_down": 1, "up_samples": 2}
    assert Server.objects.get(name="late").status == "down"
    assert up_samples() == {"fresh": [(int(now), 1.0)], "late": [(int(now), 0.0)]}
    # `up` is Vigil's own sample: it does not count as a report from the server.
    assert Server.objects.get(name="late").last_seen < moment - timedelta(seconds=100)


def test_running_it_twice_at_once_changes_nothing_more(settings):
    now = time.time()
    make_server("a", status="up", last_seen=datetime.fromtimestamp(now, tz=UTC))
    update_up(now)
    update_up(now)
    assert up_samples() == {"a": [(int(now), 1.0)]}
