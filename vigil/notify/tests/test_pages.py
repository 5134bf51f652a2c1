"""The channel, route and delivery pages: who may see and change what,
write-only secrets, validation by each kind's transport, the test button
against a real receiver on 127.0.0.1, and failed deliveries on the alerts
page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from vigil.alerts.models import Rule
from vigil.notify import configure
from vigil.notify.models import Attempt, Channel, Delivery, Route
from vigil.notify.tests.editing import (
    ESCAPED,
    EVIL,
    ROUTING_KEY,
    SECRET_URL_TOKEN,
    SIGNING_KEY,
    Receiver,
    assert_no_secret,
    failed_delivery,
    notification,
    pagerduty,
    user_with,
    webhook,
)
from vigil.notify.transports import REGISTRY, Sent, Transport
from vigil.servers.models import Location, Tag
from vigil.testing import free_port

pytestmark = pytest.mark.django_db

ALL = (
    "view_channel",
    "add_channel",
    "change_channel",
    "delete_channel",
    "view_route",
    "add_route",
    "change_route",
    "delete_route",
    "view_delivery",
)


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("root", password="secret-pass-1"))
    return client


@pytest.fixture
def operator(client):
    """A non-staff user with every right on channels, routes and deliveries."""
    client.force_login(user_with("operator", *ALL))
    return client


@pytest.fixture
def local(settings):
    settings.NOTIFY_ALLOWED_NETWORKS = "127.0.0.0/8"


def html_of(response) -> str:
    assert response.status_code == 200, response.status_code
    assert_no_secret(response.content)
    return response.content.decode()


def secret_inputs(html: str) -> list[str]:
    return re.findall(r"<input[^>]*type=\"password\"[^>]*>", html)


# --- Access ---------------------------------------------------------------------


def test_every_page_sends_anonymous_users_to_log_in_and_changes_nothing(client):
    channel = webhook()
    route = Route.objects.create(name="all", is_default=True)
    delivery = failed_delivery(channel)
    pages = [
        "/alerts/channels/",
        "/alerts/channels/new?kind=webhook",
        f"/alerts/channels/{channel.pk}/",
        "/alerts/routes/",
        "/alerts/routes/new",
        f"/alerts/routes/{route.pk}/",
        f"/alerts/deliveries/{delivery.pk}/",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url
    posts = [
        f"/alerts/channels/{channel.pk}/",
        f"/alerts/channels/{channel.pk}/test",
        f"/alerts/channels/{channel.pk}/delete",
        f"/alerts/routes/{route.pk}/delete",
    ]
    for url in posts:
        response = client.post(url, {"name": "taken over"})
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url
    assert Channel.objects.get().name == "ops hook"
    assert Route.objects.exists() and Delivery.objects.count() == 1


def test_a_user_without_rights_gets_403_and_no_links(client):
    channel = webhook()
    route = Route.objects.create(name="all", is_default=True)
    delivery = failed_delivery(channel)
    client.force_login(user_with("viewer"))
    for url in (
        "/alerts/channels/",
        "/alerts/channels/new?kind=webhook",
        f"/alerts/channels/{channel.pk}/",
        "/alerts/routes/",
        f"/alerts/routes/{route.pk}/",
        f"/alerts/deliveries/{delivery.pk}/",
    ):
        assert client.get(url).status_code == 403, url
    for url in (f"/alerts/channels/{channel.pk}/test", f"/alerts/channels/{channel.pk}/delete"):
        assert client.post(url).status_code == 403, url
    html = html_of(client.get("/alerts/"))
    assert 'href="/alerts/channels/' not in html and 'href="/alerts/routes/' not in html
    assert 'data-tab="deliveries"' not in html
    # The banner still says that something could not be delivered.
    assert "1 notification could not be delivered" in html
    assert Delivery.objects.count() == 1


def test_a_reader_sees_channels_and_routes_but_cannot_change_or_test_them(client, local):
    channel = webhook()
    client.force_login(user_with("reader", "view_channel", "view_route"))
    html = html_of(client.get(f"/alerts/channels/{channel.pk}/"))
    assert "Save channel" not in html and "Send test notification" not in html
    assert "New channel" not in html_of(client.get("/alerts/channels/"))
    response = client.post(f"/alerts/channels/{channel.pk}/", {"name": "renamed"})
    assert response.status_code == 403
    assert client.post(f"/alerts/channels/{channel.pk}/test").status_code == 403
    assert client.post("/alerts/channels/new?kind=webhook", {"name": "x"}).status_code == 403
    assert "New route" not in html_of(client.get("/alerts/routes/"))
    assert client.post("/alerts/routes/new", {"name": "x"}).status_code == 403
    assert Channel.objects.get().name == "ops hook" and not Delivery.objects.exists()


def test_the_test_button_and_the_editor_need_the_csrf_token(client, local):
    channel = webhook()
    client.handler.enforce_csrf_checks = True
    client.force_login(user_with("operator", *ALL))
    for url in (f"/alerts/channels/{channel.pk}/test", f"/alerts/channels/{channel.pk}/"):
        assert client.post(url, {"name": "x"}).status_code == 403, url
    assert not Delivery.objects.exists() and Channel.objects.get().name == "ops hook"


# --- The channel list -------------------------------------------------------------


def test_the_channel_list_shows_kind_health_and_last_error_but_no_secret(operator):
    now = timezone.now()
    broken = pagerduty(
        "pager",
        last_error="the receiver answered 400: Invalid routing key",
        last_error_at=now - timedelta(minutes=3),
        last_success_at=now - timedelta(hours=2),
    )
    healthy = webhook(
        EVIL,
        secrets={"secret": SIGNING_KEY, "url": f"https://x.example/{SECRET_URL_TOKEN}"},
        config={},
        is_fallback=True,
        last_success_at=now - timedelta(minutes=1),
    )
    html = html_of(operator.get("/alerts/channels/"))
    row = html.split(f'data-channel="{broken.pk}"')[1].split("</tr>")[0]
    assert "PagerDuty" in row and "failing" in html.split(f'data-channel="{broken.pk}"')[0][-80:]
    assert "3 min ago" in row and "Invalid routing key" in row
    assert "routing_key: set" in row
    other = html.split(f'data-channel="{healthy.pk}"')[1].split("</tr>")[0]
    assert ESCAPED in other and EVIL not in html
    assert "secret: set" in other and "url: set" in other and "fallback" in other
    assert "1 min ago" in other


def test_the_channel_list_masks_a_secret_quoted_in_an_error(operator):
    pagerduty(last_error=f"rejected key {ROUTING_KEY}", last_error_at=timezone.now())
    html = html_of(operator.get("/alerts/channels/"))
    assert "rejected key ••••••" in html


def test_the_channel_list_makes_a_constant_number_of_queries(operator):
    for k in range(3):
        webhook(f"hook {k}")
    operator.get("/alerts/channels/")
    with CaptureQueriesContext(connection) as few:
        html_of(operator.get("/alerts/channels/"))
    for k in range(3, 30):
        pagerduty(f"pager {k}")
    with CaptureQueriesContext(connection) as many:
        html_of(operator.get("/alerts/channels/"))
    assert len(many) == len(few)


# --- Creating and editing a channel ------------------------------------------------


def test_a_new_channel_starts_with_the_choice_of_kind(operator):
    html = html_of(operator.get("/alerts/channels/new"))
    for label in ("E-mail", "PagerDuty", "Webhook"):
        assert label in html
    assert operator.get("/alerts/channels/new?kind=carrier-pigeon").status_code == 404


@pytest.mark.parametrize("kind", [k for k, _ in configure.kinds()])
def test_every_installed_kind_has_an_editor_with_its_settings_and_secrets(operator, kind):
    html = html_of(operator.get(f"/alerts/channels/new?kind={kind}"))
    for name in configure.secret_fields(kind):
        assert f'data-field="secret__{name}" data-state="not set"' in html
    for field in configure.config_fields(kind) or ():
        assert f'name="config__{field.name}"' in html
    fields = secret_inputs(html)
    assert len(fields) == len(configure.secret_fields(kind))
    assert all("value=" not in f for f in fields)


def test_an_operator_creates_a_webhook_channel_whose_secret_is_never_shown(operator):
    html = html_of(operator.get("/alerts/channels/new?kind=webhook"))
    assert 'name="config__url"' in html and 'name="secret__secret"' in html
    response = operator.post(
        "/alerts/channels/new?kind=webhook",
        {
            "name": "ops hook",
            "enabled": "on",
            "config__url": "https://hooks.example.com/vigil",
            "config__headers": "X-Team: ops\nX-Env: prod",
            "secret__secret": SIGNING_KEY,
        },
    )
    assert response.status_code == 302
    channel = Channel.objects.get()
    assert channel.kind == "webhook" and channel.enabled
    assert channel.config == {
        "url": "https://hooks.example.com/vigil",
        "headers": {"X-Team": "ops", "X-Env": "prod"},
    }
    assert channel.secrets == {"secret": SIGNING_KEY}
    html = html_of(operator.get(response["Location"]))
    assert "Channel saved: ops hook." in html
    secret = html.split('data-field="secret__secret"')[1].split("</div>")[0]
    assert ">set<" in secret
    for field in secret_inputs(html):
        assert "value=" not in field
    assert "X-Team: ops" in html


def test_an_empty_secret_keeps_a_new_one_replaces_and_clear_removes(operator):
    channel = webhook(
        secrets={"secret": SIGNING_KEY, "url": f"https://h.example/{SECRET_URL_TOKEN}"}
    )
    url = f"/alerts/channels/{channel.pk}/"
    base = {"name": "ops hook", "enabled": "on", "config__url": ""}
    # Empty: kept.
    assert operator.post(url, {**base, "secret__secret": ""}).status_code == 302
    channel.refresh_from_db()
    assert channel.secrets["secret"] == SIGNING_KEY
    # A new value replaces it.
    new_key = "another-signing-key-0042"
    assert operator.post(url, {**base, "secret__secret": new_key}).status_code == 302
    channel.refresh_from_db()
    assert channel.secrets["secret"] == new_key and channel.secrets["url"].endswith(
        SECRET_URL_TOKEN
    )
    # Clear removes it; the page then says "not set".
    response = operator.post(url, {**base, "clear__secret": "on"})
    assert response.status_code == 302
    channel.refresh_from_db()
    assert "secret" not in channel.secrets
    html = html_of(operator.get(url))
    assert 'data-field="secret__secret" data-state="not set"' in html
    assert 'data-field="secret__url" data-state="set"' in html


def test_typing_a_secret_and_clearing_it_at_once_is_refused(operator):
    channel = webhook()
    response = operator.post(
        f"/alerts/channels/{channel.pk}/",
        {
            "name": "ops hook",
            "config__url": "https://hooks.example.com/vigil",
            "secret__secret": "a-brand-new-key-1234",
            "clear__secret": "on",
        },
    )
    html = html_of(response)
    assert "Either type a new value or clear it, not both." in html
    assert "a-brand-new-key-1234" not in html
    channel.refresh_from_db()
    assert channel.secrets == {"secret": SIGNING_KEY}


def test_the_transport_validates_and_a_refused_secret_is_not_echoed(operator):
    response = operator.post(
        "/alerts/channels/new?kind=pagerduty",
        {
            "name": "pager",
            "secret__routing_key": "short-key-typed-9",
            "config__api_base": "ftp://x",
        },
    )
    html = html_of(response)
    assert "32 letters and digits" in html
    assert "must start with https://" in html
    assert "short-key-typed-9" not in html
    assert not Channel.objects.exists()
    # Without the secret that the kind needs.
    html = html_of(operator.post("/alerts/channels/new?kind=pagerduty", {"name": "pager"}))
    assert "routing key (the integration key) is required" in html


def test_a_duplicate_name_is_refused(operator):
    webhook("ops hook")
    html = html_of(
        operator.post(
            "/alerts/channels/new?kind=webhook",
            {"name": "ops hook", "config__url": "https://example.com/"},
        )
    )
    assert "already exists" in html and Channel.objects.count() == 1


class Plain(Transport):
    """A kind that declares no settings: the editor takes them as JSON."""

    kind = "plain"
    label = "Plain JSON"
    secret_fields = ("token",)

    @classmethod
    def validate(cls, config, secrets):
        return {} if config.get("target") else {"target": "a target is required"}

    def notify(self, message):
        return Sent(200, "ok")


@pytest.fixture
def plain():
    REGISTRY["plain"] = Plain
    yield
    REGISTRY.pop("plain", None)


def test_a_kind_without_declared_settings_is_edited_as_json(operator, plain):
    url = "/alerts/channels/new?kind=plain"
    assert 'name="config_json"' in html_of(operator.get(url))
    html = html_of(operator.post(url, {"name": "p", "config_json": "[1, 2]"}))
    assert "Give a JSON object" in html
    html = html_of(operator.post(url, {"name": "p", "config_json": "{}"}))
    assert "target: a target is required" in html
    response = operator.post(
        url, {"name": "p", "config_json": '{"target": "a", "n": 2}', "secret__token": SIGNING_KEY}
    )
    assert response.status_code == 302
    channel = Channel.objects.get()
    assert channel.config == {"target": "a", "n": 2} and channel.secrets == {"token": SIGNING_KEY}
    html_of(operator.get(response["Location"]))


def test_a_channel_is_deleted_with_its_deliveries(operator):
    channel = webhook()
    failed_delivery(channel)
    response = operator.post(f"/alerts/channels/{channel.pk}/delete")
    assert response.status_code == 302 and response["Location"] == "/alerts/channels/"
    assert not Channel.objects.exists() and not Delivery.objects.exists()


# --- The test button ---------------------------------------------------------------


def test_the_test_button_sends_through_a_real_receiver_and_shows_its_answer(operator, local):
    with Receiver(202, b'{"accepted":true,"note":"seen by the test receiver"}') as receiver:
        channel = webhook(url=receiver.url + "/hooks/vigil")
        html = html_of(operator.get(f"/alerts/channels/{channel.pk}/"))
        assert "Send test notification" in html
        response = operator.post(f"/alerts/channels/{channel.pk}/test")
    assert response.status_code == 302
    (request,) = receiver.requests
    assert request["path"] == "/hooks/vigil"
    delivery = Delivery.objects.get()
    assert delivery.purpose == "test" and delivery.status == "sent"
    assert request["headers"]["X-Vigil-Delivery"] == str(delivery.key)
    assert SIGNING_KEY.encode() not in request["body"]
    assert response["Location"] == f"/alerts/channels/{channel.pk}/?test={delivery.pk}#test-result"
    html = html_of(operator.get(response["Location"]))
    result = html.split('id="test-result"')[1].split("</section>")[0]
    assert "Test notification: sent" in result and "202" in result
    assert "seen by the test receiver" in result
    assert "Test notification sent through ops hook." in html
    channel.refresh_from_db()
    assert channel.last_success_at is not None


def test_a_failed_test_shows_the_status_the_error_and_the_answer(operator, local):
    with Receiver(500, b'{"error":"database down"}') as receiver:
        channel = webhook(url=receiver.url + "/hook")
        response = operator.post(f"/alerts/channels/{channel.pk}/test")
    html = html_of(operator.get(response["Location"]))
    result = html.split('id="test-result"')[1].split("</section>")[0]
    assert "not sent" in result and "500" in result
    assert "the receiver answered 500" in result and "database down" in result
    assert "failed" in html.split('class="messages"')[1].split("</ul>")[0]
    # A test is a question asked now: it is not retried.
    assert Delivery.objects.get().status == "failed"
    # The channel's last error is shown with its time, on the editor and the list.
    assert "Last error" in html and "the receiver answered 500" in html
    assert "the receiver answered 500" in html_of(operator.get("/alerts/channels/"))


def test_a_test_to_a_closed_port_says_the_connection_was_refused(operator, local):
    channel = webhook(url=f"http://127.0.0.1:{free_port()}/hook")
    response = operator.post(f"/alerts/channels/{channel.pk}/test")
    html = html_of(operator.get(response["Location"]))
    assert "connection refused" in html.split('id="test-result"')[1]


def test_a_test_result_of_another_channel_is_not_shown(operator, local):
    with Receiver() as receiver:
        one = webhook("one", url=receiver.url)
        two = webhook("two", url=receiver.url)
        operator.post(f"/alerts/channels/{one.pk}/test")
    delivery = Delivery.objects.get(channel=one)
    html = html_of(operator.get(f"/alerts/channels/{two.pk}/?test={delivery.pk}"))
    assert 'id="test-result"' not in html
    html = html_of(operator.get(f"/alerts/channels/{two.pk}/?test=99999999999999999999999"))
    assert 'id="test-result"' not in html


# --- Routes -----------------------------------------------------------------------


def test_an_operator_creates_a_route_with_conditions_and_escalation(operator):
    pager, mail = pagerduty("pager"), webhook("mail hook")
    rule = Rule.objects.create(name="Disk full", metric="filesystem_used_percent")
    paris, db = Location.objects.create(name="paris"), Tag.objects.create(name="db")
    html = html_of(operator.get("/alerts/routes/new"))
    assert "Escalate after" in html and "pager" in html
    response = operator.post(
        "/alerts/routes/new",
        {
            "name": "critical db in paris",
            "enabled": "on",
            "rule": rule.pk,
            "severity": "critical",
            "location": paris.pk,
            "tag": db.pk,
            "channels": [mail.pk],
            "escalate_after_minutes": "15",
            "escalate_to": [pager.pk],
        },
    )
    assert response.status_code == 302
    route = Route.objects.get()
    assert [c.name for c in route.channels.all()] == ["mail hook"]
    assert [c.name for c in route.escalate_to.all()] == ["pager"]
    assert (route.rule, route.severity, route.location, route.tag) == (rule, "critical", paris, db)
    html = html_of(operator.get("/alerts/routes/"))
    assert "rule Disk full, severity critical, location paris, tag db" in html
    assert "after 15 min to pager" in html


def test_an_escalation_needs_both_minutes_and_channels(operator):
    pager = pagerduty()
    html = html_of(
        operator.post("/alerts/routes/new", {"name": "r", "escalate_after_minutes": "10"})
    )
    assert "Choose the channels to escalate to" in html
    html = html_of(
        operator.post(
            "/alerts/routes/new",
            {"name": "r", "escalate_after_minutes": "0", "escalate_to": [pager.pk]},
        )
    )
    assert "Set after how many minutes to escalate." in html
    assert not Route.objects.exists()


def test_a_route_is_edited_and_deleted(operator):
    route = Route.objects.create(name=EVIL, is_default=True)
    html = html_of(operator.get(f"/alerts/routes/{route.pk}/"))
    assert ESCAPED in html and EVIL not in html
    assert "when no other route matches" in html_of(operator.get("/alerts/routes/"))
    response = operator.post(
        f"/alerts/routes/{route.pk}/",
        {"name": "everything", "is_default": "on", "escalate_after_minutes": "0"},
    )
    assert response.status_code == 302
    route.refresh_from_db()
    assert route.name == "everything" and not route.enabled
    assert operator.post(f"/alerts/routes/{route.pk}/delete").status_code == 302
    assert not Route.objects.exists()


# --- Deliveries on the alerts page --------------------------------------------------


def test_failed_deliveries_raise_a_banner_and_are_highlighted(operator):
    pager = pagerduty()
    failed_delivery(pager, notification("Disk full on db-1"))
    failed_delivery(pager, notification("Load high on web-2"), error=f"key {ROUTING_KEY} refused")
    n = notification("Memory low on web-3")
    sent = Delivery.objects.create(notification=n, channel=pager, status="sent", attempts=1)
    # Neither a failed test nor an old failure raises the banner.
    Delivery.objects.create(channel=pager, purpose="test", status="failed", attempts=1)
    failed_delivery(pager, notification("Long ago"), age=timedelta(days=8))
    html = html_of(operator.get("/alerts/"))
    assert "2 notifications could not be delivered" in html
    assert 'href="?tab=deliveries&amp;status=failed"' in html
    tab = html.split('data-tab="deliveries"')[1].split("</a>")[0]
    assert 'class="count hot"' in tab and ">2<" in tab
    html = html_of(operator.get("/alerts/?tab=deliveries"))
    rows = re.findall(r'<tr class="delivery-row status-(\w+)" data-delivery="(\d+)"', html)
    assert len(rows) == 5
    assert ("sent", str(sent.pk)) in rows
    assert sum(1 for status, _ in rows if status == "failed") == 4
    assert "Disk full on db-1" in html and "key •••••• refused" in html
    html = html_of(operator.get("/alerts/?tab=deliveries&status=failed"))
    assert "Memory low on web-3" not in html and "Disk full on db-1" in html


def test_a_notification_that_failed_on_two_channels_counts_once(operator):
    n = notification("Disk full on db-1")
    failed_delivery(pagerduty(), n)
    failed_delivery(webhook(), n)
    html = html_of(operator.get("/alerts/"))
    assert "1 notification could not be delivered" in html


def test_no_banner_when_every_notification_was_delivered(operator):
    n = notification()
    Delivery.objects.create(notification=n, channel=webhook(), status="sent", attempts=1)
    html = html_of(operator.get("/alerts/"))
    assert "could not be delivered" not in html
    assert "No delivery with this status yet." in html_of(
        operator.get("/alerts/?tab=deliveries&status=failed")
    )


def test_the_deliveries_tab_makes_a_constant_number_of_queries(operator):
    pager = pagerduty()
    failed_delivery(pager)
    operator.get("/alerts/?tab=deliveries")
    with CaptureQueriesContext(connection) as few:
        html_of(operator.get("/alerts/?tab=deliveries"))
    for k in range(20):
        failed_delivery(webhook(f"hook {k}"), notification(f"n {k}"))
    with CaptureQueriesContext(connection) as many:
        html_of(operator.get("/alerts/?tab=deliveries"))
    assert len(many) == len(few)


def test_a_delivery_lists_its_attempts_with_status_error_and_duration(operator):
    pager = pagerduty()
    delivery = failed_delivery(pager, notification(EVIL), error=f"refused {ROUTING_KEY}")
    html = html_of(operator.get(f"/alerts/deliveries/{delivery.pk}/"))
    assert ESCAPED in html and EVIL not in html
    rows = re.findall(r'<tr class="outcome-(\w+)" data-attempt="(\d)"', html)
    assert rows == [("retry", "1"), ("retry", "2"), ("failed", "3")]
    assert "41 ms" in html and "500" in html and "upstream down" in html
    assert "refused ••••••" in html
    assert str(delivery.key) in html
    assert operator.get("/alerts/deliveries/999999/").status_code == 404
    assert Attempt.objects.filter(delivery=delivery).count() == 3
