"""Configuring scrape targets: the admin, `vigil scrape`, and the server page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from vigil.scrape.models import ScrapeTarget
from vigil.servers.models import Server
from vigil.testing import make_server

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("root", password="secret-pass-1"))
    return client


def test_the_admin_lists_targets_and_adds_one(admin_client):
    server = make_server("node-1")
    ScrapeTarget.objects.create(server=server, url="http://10.0.0.5:9100/metrics")
    assert admin_client.get("/admin/scrape/scrapetarget/").status_code == 200
    response = admin_client.post(
        "/admin/scrape/scrapetarget/add/",
        {
            "server": server.pk,
            "url": "http://10.0.0.6:9100/metrics",
            "interval": 30,
            "timeout": 5,
            "enabled": "on",
            "next_due_0": "2026-01-01",
            "next_due_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert ScrapeTarget.objects.count() == 2


def test_the_admin_refuses_a_timeout_longer_than_the_interval(admin_client):
    server = make_server("node-1")
    response = admin_client.post(
        "/admin/scrape/scrapetarget/add/",
        {"server": server.pk, "url": "http://10.0.0.6:9100/metrics", "interval": 5,
         "timeout": 10, "next_due_0": "2026-01-01", "next_due_1": "00:00:00"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "must not be longer than the interval" in response.content.decode()


@pytest.mark.parametrize(
    "url", ["ftp://10.0.0.5/metrics", "not a url", "javascript:alert(1)", "http://"]
)
def test_a_target_url_must_be_http(url):
    target = ScrapeTarget(server=make_server("node-1"), url=url)
    with pytest.raises(ValidationError):
        target.full_clean()


def test_the_command_adds_lists_and_removes_targets(capsys):
    call_command("scrape", "add", "--server", "node-1", "--url", "http://10.0.0.5:9100/metrics",
                 "--interval", "2")  # fmt: skip
    target = ScrapeTarget.objects.get()
    assert (target.server.name, target.interval, target.timeout) == ("node-1", 2, 2.0)
    assert Server.objects.get().host_name == "node-1"
    assert capsys.readouterr().out.strip() == str(target.pk)

    call_command("scrape", "list")
    assert "node-1  http://10.0.0.5:9100/metrics  every 2 s  never" in capsys.readouterr().out

    call_command("scrape", "remove", "--server", "node-1", "--url", target.url)
    assert not ScrapeTarget.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "gopher://x/"], "url: Enter a valid URL."),
        (["--url", "http://10.0.0.5/", "--interval", "0"], "interval: Ensure this value"),
        (["--url", "http://10.0.0.5/", "--interval", "5", "--timeout", "9"], "timeout: The"),
    ],
)
def test_the_command_explains_what_is_wrong(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("scrape", "add", "--server", "node-1", *args)
    assert not ScrapeTarget.objects.exists()


def test_the_command_refuses_a_target_twice():
    args = ["scrape", "add", "--server", "node-1", "--url", "http://10.0.0.5:9100/metrics"]
    call_command(*args)
    with pytest.raises(CommandError, match="already exists"):
        call_command(*args)


def test_the_server_page_shows_its_targets_with_their_escaped_error(client):
    client.force_login(User.objects.create_user("alice", password="secret-pass-1"))
    server = make_server("node-1")
    ScrapeTarget.objects.create(
        server=server,
        url="http://scraper:hunter2@10.0.0.5:9100/metrics",
        last_scrape=timezone.now(),
        last_duration=0.0123,
        last_error="the exporter answered <script>alert(1)</script>",
    )
    ScrapeTarget.objects.create(server=server, url="http://10.0.0.6:9100/metrics", enabled=False)
    page = client.get(f"/servers/{server.pk}/").content.decode()
    assert "Scrape targets" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "http://scraper:***@10.0.0.5:9100/metrics" in page and "hunter2" not in page
    assert '<span class="badge down">failing</span>' in page
    assert '<span class="badge new">disabled</span>' in page


def test_a_server_without_targets_says_so(client):
    client.force_login(User.objects.create_user("alice", password="secret-pass-1"))
    server = make_server("node-1")
    html = client.get(f"/servers/{server.pk}/").content.decode()
    assert "Vigil scrapes no exporter for this server" in html


def test_the_admin_never_shows_the_password_of_a_scrape_url_and_keeps_it(client, django_user_model):
    from vigil.scrape.models import ScrapeTarget
    from vigil.testing import make_server

    client.force_login(django_user_model.objects.create_superuser("root", password="pw-123456"))
    server = make_server("web-1")
    target = ScrapeTarget.objects.create(
        server=server, url="http://scraper:s3cret-pw@10.0.0.5:9100/metrics"
    )
    page = client.get(f"/admin/scrape/scrapetarget/{target.pk}/change/").content.decode()
    assert "s3cret-pw" not in page
    assert "scraper:***@10.0.0.5" in page
    form = {
        "server": server.pk, "url": target.display_url, "interval": 30, "timeout": 5,
        "enabled": "on", "next_due_0": "2026-11-25", "next_due_1": "10:00:00",
    }  # fmt: skip
    response = client.post(f"/admin/scrape/scrapetarget/{target.pk}/change/", form)
    assert response.status_code == 302
    target.refresh_from_db()
    assert target.url == "http://scraper:s3cret-pw@10.0.0.5:9100/metrics"
    assert target.interval == 30
