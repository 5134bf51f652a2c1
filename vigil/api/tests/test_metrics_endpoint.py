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
