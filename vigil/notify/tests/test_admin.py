"""The notification models in the admin: secrets are write-only password
fields (never rendered back, listed as set / not set), the kind's transport
validates, routes pick channels side by side, and the delivery log is
read-only."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User

from vigil.notify.models import Channel, Delivery, Route
from vigil.notify.tests.editing import (
    ROUTING_KEY,
    SIGNING_KEY,
    assert_no_secret,
    failed_delivery,
    pagerduty,
    webhook,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("root", password="secret-pass-1"))
    return client


def page(response) -> str:
    assert response.status_code == 200, response.status_code
    assert_no_secret(response.content)
    return response.content.decode()


def change_data(channel: Channel, **extra) -> dict:
    return {"name": channel.name, "enabled": "on", "config": '{"api_base": ""}', **extra}


def test_every_notify_model_has_an_admin_list_that_shows_no_secret(admin_client):
    pager = pagerduty(last_error=f"key {ROUTING_KEY} refused", last_error_at="2026-01-01T00:00Z")
    delivery = failed_delivery(pager, error=f"bad {ROUTING_KEY}")
    Route.objects.create(name="all", is_default=True).channels.add(pager)
    html = page(admin_client.get("/admin/notify/channel/"))
    assert "routing_key: set" in html and "key •••••• refused" in html
    for model in ("route", "delivery", "attempt"):
        page(admin_client.get(f"/admin/notify/{model}/"))
    html = page(admin_client.get(f"/admin/notify/delivery/{delivery.pk}/change/"))
    assert "bad ••••••" in html and "upstream down" in html
    attempt = delivery.log.first()
    page(admin_client.get(f"/admin/notify/attempt/{attempt.pk}/change/"))


def test_the_admin_is_for_staff_only(client):
    pagerduty()
    client.force_login(User.objects.create_user("viewer", password="secret-pass-1"))
    response = client.get("/admin/notify/channel/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.logout()
    response = client.get("/admin/notify/channel/1/change/")
    assert response.status_code == 302 and "login/" in response["Location"]


def test_a_channel_made_in_the_admin_stores_its_secret_write_only(admin_client):
    html = page(admin_client.get("/admin/notify/channel/add/"))
    assert 'name="secret__routing_key"' in html and "PagerDuty: routing key" in html
    response = admin_client.post(
        "/admin/notify/channel/add/",
        {
            "name": "pager",
            "kind": "pagerduty",
            "enabled": "on",
            "config": "{}",
            "secret__routing_key": ROUTING_KEY,
            # A secret of another kind is ignored.
            "secret__secret": SIGNING_KEY,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    channel = Channel.objects.get()
    assert channel.kind == "pagerduty" and channel.secrets == {"routing_key": ROUTING_KEY}
    html = page(admin_client.get(f"/admin/notify/channel/{channel.pk}/change/"))
    assert "Routing key (set)" in html
    for field in re.findall(r'<input[^>]*type="password"[^>]*>', html):
        assert "value=" not in field


def test_the_admin_keeps_replaces_and_clears_secrets(admin_client):
    channel = pagerduty()
    url = f"/admin/notify/channel/{channel.pk}/change/"
    assert admin_client.post(url, change_data(channel)).status_code == 302
    channel.refresh_from_db()
    assert channel.secrets == {"routing_key": ROUTING_KEY}
    new_key = "N3wRoutingKey0000000000000000abc"
    response = admin_client.post(url, change_data(channel, secret__routing_key=new_key))
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.secrets == {"routing_key": new_key}
    # Clearing a key the kind needs is refused by the transport's validate().
    html = page(admin_client.post(url, change_data(channel, clear__routing_key="on")))
    assert "routing key (the integration key) is required" in html
    channel.refresh_from_db()
    assert channel.secrets == {"routing_key": new_key}


def test_a_refused_secret_is_not_rendered_back(admin_client):
    channel = webhook()
    response = admin_client.post(
        f"/admin/notify/channel/{channel.pk}/change/",
        {
            "name": "ops hook",
            "config": '{"url": "https://example.com/h"}',
            "secret__secret": "short",
        },
    )
    html = page(response)
    assert "at least 16 characters" in html and 'value="short"' not in html
    html = page(
        admin_client.post(
            f"/admin/notify/channel/{channel.pk}/change/", {"name": "ops hook", "config": "[]"}
        )
    )
    assert "Give a JSON object" in html


def test_routes_choose_channels_side_by_side(admin_client):
    pager, hook = pagerduty(), webhook()
    html = page(admin_client.get("/admin/notify/route/add/"))
    assert "selectfilter" in html and "pager" in html
    response = admin_client.post(
        "/admin/notify/route/add/",
        {
            "name": "critical",
            "enabled": "on",
            "severity": "critical",
            "channels": [hook.pk],
            "escalate_after_minutes": "5",
            "escalate_to": [pager.pk],
        },
    )
    assert response.status_code == 302
    route = Route.objects.get()
    assert list(route.channels.all()) == [hook] and list(route.escalate_to.all()) == [pager]


def test_the_delivery_log_is_read_only(admin_client):
    delivery = failed_delivery(pagerduty())
    html = page(admin_client.get(f"/admin/notify/delivery/{delivery.pk}/change/"))
    assert 'name="_save"' not in html
    assert html.count("upstream down") == 3  # each attempt in the inline
    assert admin_client.get("/admin/notify/delivery/add/").status_code == 403
    assert admin_client.get("/admin/notify/attempt/add/").status_code == 403
    response = admin_client.post(
        f"/admin/notify/delivery/{delivery.pk}/change/", {"status": "sent"}
    )
    assert response.status_code == 403
    assert Delivery.objects.get().status == "failed"
