from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from vigil.scrape.models import ScrapeTarget
from vigil.testing import make_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("root", password="secret-pass-1"))
    return client


@pytest.fixture
def viewer_client(client):
    client.force_login(User.objects.create_user("viewer", password="secret-pass-1"))
    return client


def test_an_operator_adds_a_scrape_target_from_the_server_page(admin_client):
    server = make_server("web-1")
    response = admin_client.post(
        f"/servers/{server.pk}/scrape-targets/",
        {"url": "http://scraper:pw-9@10.0.0.5:9100/metrics", "interval": 30, "timeout": 5},
        follow=True,
    )
    target = ScrapeTarget.objects.get()
    assert (target.server, target.interval) == (server, 30)
    html = response.content.decode()
    assert "Vigil scrapes http://scraper:***@10.0.0.5:9100/metrics every 30 s." in html
    assert "pw-9" not in html


def test_a_bad_scrape_target_is_refused_with_a_reason(admin_client):
    server = make_server("web-1")
    response = admin_client.post(
        f"/servers/{server.pk}/scrape-targets/",
        {"url": "ftp://<script>/x", "interval": 5, "timeout": 10},
        follow=True,
    )
    html = response.content.decode()
    assert ScrapeTarget.objects.count() == 0
    assert "The scrape target was not added" in html
    assert "<script>" not in html


def test_an_operator_removes_a_scrape_target(admin_client):
    server = make_server("web-1")
    target = ScrapeTarget.objects.create(server=server, url="http://10.0.0.5:9100/metrics")
    other = make_server("web-2")
    url = f"/servers/{other.pk}/scrape-targets/{target.pk}/delete/"
    assert admin_client.post(url).status_code == 404
    admin_client.post(f"/servers/{server.pk}/scrape-targets/{target.pk}/delete/")
    assert ScrapeTarget.objects.count() == 0


def test_a_user_without_the_permission_cannot_change_scrape_targets(viewer_client):
    server = make_server("web-1")
    target = ScrapeTarget.objects.create(server=server, url="http://10.0.0.5:9100/metrics")
    html = viewer_client.get(f"/servers/{server.pk}/").content.decode()
    assert "Add scrape target" not in html and "Remove" not in html
    add = viewer_client.post(
        f"/servers/{server.pk}/scrape-targets/", {"url": "http://10.0.0.6:9100/metrics"}
    )
    assert add.status_code == 403
    remove = viewer_client.post(f"/servers/{server.pk}/scrape-targets/{target.pk}/delete/")
    assert remove.status_code == 403
    assert ScrapeTarget.objects.count() == 1


def test_anonymous_users_are_sent_to_log_in(client):
    server = make_server("web-1")
    response = client.post(f"/servers/{server.pk}/scrape-targets/", {"url": "http://x/"})
    assert response.status_code == 302
    assert ScrapeTarget.objects.count() == 0
