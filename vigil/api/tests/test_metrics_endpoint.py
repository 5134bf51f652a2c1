from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User

from vigil.testing import batch, bearer, make_server, make_token

pytestmark = pytest.mark.django_db


def test_it_exposes_vigils_own_metrics_in_prometheus_text_format(client):
    make_server("web-1", status="up")
    token = make_token()
    client.post(
        "/api/v1/ingest",
        data=batch("web-2", ("load1", {}, [[int(time.time()), 1], [int(time.time()), "x"]])),
        content_type="application/json",
        **bearer(token),
    )
    client.force_login(User.objects.create_user("alice", password="secret-pass-1"))
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    assert "# TYPE vigil_servers gauge" in text
    assert 'vigil_servers{status="up"} 2' in text
    assert 'vigil_ingest_requests_total{endpoint="ingest",status="400"}' in text
    assert "vigil_ingest_samples_rejected_total" in text


def test_it_needs_credentials(client):
    assert client.get("/metrics").status_code == 401


def test_it_counts_alerts_by_state_failing_rules_and_queued_notifications(client, settings):
    from vigil.alerts.models import Rule
    from vigil.alerts.tasks import evaluate_alerts
    from vigil.testing import store

    settings.ALERT_GROUP_WAIT_SECONDS = 0
    Rule.objects.all().delete()
    Rule.objects.create(name="hot", metric="cpu_usage_percent", threshold=90)
    Rule.objects.create(name="broken", metric="cpu_usage_percent", threshold=1, matchers="a=~(")
    now = int(time.time())
    store(make_server("web-1"), "cpu_usage_percent", [(now, 95)])
    evaluate_alerts(now)
    client.force_login(User.objects.create_user("alice", password="secret-pass-1"))
    text = client.get("/metrics").content.decode()
    assert 'vigil_alerts{state="firing"} 1' in text
    assert 'vigil_alerts{state="pending"} 0' in text
    assert "vigil_alert_rules_failing 1" in text
    assert "vigil_notifications_queued 1" in text
