from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from vigil.servers.models import Location, Server
from vigil.testing import make_server, store

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client):
    client.force_login(User.objects.create_user("alice", password="secret-pass-1"))
    return client


@pytest.mark.parametrize("url", ["/", "/servers/fragment/", "/servers/1/"])
def test_every_page_needs_a_login(client, url):
    make_server("web-1", pk=1)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_admin_needs_a_staff_login(logged_in):
    assert logged_in.get("/admin/").status_code == 302


def test_the_server_list_groups_servers_by_location_with_current_values(logged_in):
    paris = Location.objects.create(name="Paris")
    web = make_server("web-1", location=paris)
    make_server("db-1")
    now = int(time.time())
    store(web, "cpu_usage_percent", [(now, 12.34)])
    store(web, "memory_used_percent", [(now, 56.78)])
    store(web, "filesystem_used_percent", [(now, 40)], {"mountpoint": "/"})
    store(web, "filesystem_used_percent", [(now, 91.5)], {"mountpoint": "/data"})
    html = logged_in.get("/").content.decode()
    assert (
        html.index("Paris") < html.index("web-1") < html.index("No location") < html.index("db-1")
    )
    assert "12.3 %" in html and "56.8 %" in html and "91.5 %" in html


def test_an_overdue_server_shows_as_down(logged_in):
    server = make_server("web-1")
    Server.objects.filter(pk=server.pk).update(
        status="up", last_seen=timezone.now() - timezone.timedelta(hours=1)
    )
    html = logged_in.get("/").content.decode()
    assert 'class="badge down"' in html


def test_user_strings_are_escaped_in_every_page(logged_in):
    evil = "<script>alert(1)</script>"
    server = make_server(evil, host_name="evil")
    Location.objects.create(name=evil).servers.add(server)
    for url in ("/", "/servers/fragment/", f"/servers/{server.pk}/"):
        html = logged_in.get(url).content.decode()
        assert evil not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_server_list_makes_the_same_queries_for_100_servers(
    logged_in, django_assert_num_queries
):
    paris = Location.objects.create(name="Paris")
    for i in range(100):
        store(make_server(f"web-{i:03}", location=paris), "cpu_usage_percent", [(1_790_000_000, i)])
    # session, user, servers with locations, headline series
    with django_assert_num_queries(4):
        response = logged_in.get("/servers/fragment/")
    assert response.content.decode().count("<tr class=") == 100


def test_the_server_page_has_its_charts_and_ranges(logged_in):
    server = make_server("web-1")
    html = logged_in.get(f"/servers/{server.pk}/").content.decode()
    assert 'data-server="web-1"' in html
    for label in ("1h", "6h", "24h", "7d"):
        assert f">{label}</button>" in html
    assert "vendor/uPlot.iife.min.js" in html


def test_an_unknown_server_is_404(logged_in):
    assert logged_in.get("/servers/999/").status_code == 404


def test_healthz_answers_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_the_servers_api_lists_servers(logged_in):
    make_server("web-1")
    body = logged_in.get("/api/v1/servers").json()
    assert [s["name"] for s in body["servers"]] == ["web-1"]
    assert logged_in.post("/api/v1/servers").status_code in (403, 405)
