"""The channels, routes and deliveries API: secrets are written and never
answered, every answer matches the OpenAPI document, the test send goes to
a real receiver, and /metrics counts deliveries by status."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from django.contrib.auth.models import User

from vigil.api.tests.test_openapi import Api, conforms
from vigil.notify.models import Channel, Delivery, Route
from vigil.notify.tests.editing import (
    ROUTING_KEY,
    SIGNING_KEY,
    Receiver,
    assert_no_secret,
    failed_delivery,
    notification,
    pagerduty,
    user_with,
    webhook,
)

pytestmark = pytest.mark.django_db

WRITE = (
    "add_channel",
    "change_channel",
    "delete_channel",
    "add_route",
    "change_route",
    "delete_route",
)
READ = ("view_channel", "view_route", "view_delivery")


class SafeApi(Api):
    """Every answer is checked for the test secrets."""

    def __call__(self, method: str, url: str, data: object = None):
        response = super().__call__(method, url, data)
        assert_no_secret(response.content)
        return response


@pytest.fixture
def editor() -> SafeApi:
    return SafeApi(user_with("editor", *READ, *WRITE))


@pytest.fixture
def reader() -> SafeApi:
    return SafeApi(user_with("reader", *READ))


@pytest.fixture
def local(settings):
    settings.NOTIFY_ALLOWED_NETWORKS = "127.0.0.0/8"


def new_pager(editor: SafeApi, **extra) -> dict:
    body = {"name": "pager", "kind": "pagerduty", "secrets": {"routing_key": ROUTING_KEY}}
    return conforms(
        editor("POST", "/api/v1/channels", {**body, **extra}), "POST /api/v1/channels", 201
    )


# --- Access ----------------------------------------------------------------------


def test_anonymous_clients_are_refused_everywhere():
    channel = webhook()
    delivery = failed_delivery(channel)
    route = Route.objects.create(name="r")
    api = SafeApi(None)
    for method, url, path in (
        ("GET", "/api/v1/channels", ""),
        ("POST", "/api/v1/channels", ""),
        ("GET", f"/api/v1/channels/{channel.pk}", "/api/v1/channels/{pk}"),
        ("PATCH", f"/api/v1/channels/{channel.pk}", "/api/v1/channels/{pk}"),
        ("DELETE", f"/api/v1/channels/{channel.pk}", "/api/v1/channels/{pk}"),
        ("POST", f"/api/v1/channels/{channel.pk}/test", "/api/v1/channels/{pk}/test"),
        ("GET", "/api/v1/routes", ""),
        ("DELETE", f"/api/v1/routes/{route.pk}", "/api/v1/routes/{pk}"),
        ("GET", "/api/v1/deliveries", ""),
        ("GET", f"/api/v1/deliveries/{delivery.pk}", "/api/v1/deliveries/{pk}"),
    ):
        conforms(api(method, url, {"name": "x"}), f"{method} {path or url}", 401)
    assert Channel.objects.count() == 1 and Route.objects.count() == 1


def test_a_user_without_rights_gets_403_and_a_reader_cannot_write():
    channel = webhook()
    nobody, reader = SafeApi(user_with("nobody")), SafeApi(user_with("reader", *READ))
    for url in ("/api/v1/channels", "/api/v1/routes", "/api/v1/deliveries"):
        assert nobody("GET", url).status_code == 403, url
        assert reader("GET", url).status_code == 200, url
    conforms(nobody("GET", f"/api/v1/channels/{channel.pk}"), "GET /api/v1/channels/{pk}", 403)
    for method, url in (
        ("POST", "/api/v1/channels"),
        ("PATCH", f"/api/v1/channels/{channel.pk}"),
        ("DELETE", f"/api/v1/channels/{channel.pk}"),
        ("POST", f"/api/v1/channels/{channel.pk}/test"),
        ("POST", "/api/v1/routes"),
    ):
        response = reader(method, url, {"name": "x", "kind": "webhook"})
        assert response.status_code == 403, (method, url)
        assert b"permission denied" in response.content
    assert Channel.objects.get().name == "ops hook" and not Delivery.objects.exists()


def test_a_session_write_needs_the_csrf_token(client):
    client.force_login(User.objects.create_superuser("root", password="secret-pass-1"))
    client.handler.enforce_csrf_checks = True
    response = client.post(
        "/api/v1/channels",
        orjson.dumps({"name": "x", "kind": "pagerduty"}),
        content_type="application/json",
    )
    assert response.status_code == 403 and b"CSRF" in response.content


# --- Channels ----------------------------------------------------------------------


def test_a_channel_is_created_with_secrets_that_are_answered_only_as_set(editor):
    body = new_pager(editor, config={"api_base": "https://events.eu.pagerduty.com"})
    assert body["secrets"] == {"routing_key": "set"}
    assert body["config"] == {"api_base": "https://events.eu.pagerduty.com"}
    assert body["kind"] == "pagerduty" and body["label"] == "PagerDuty"
    assert Channel.objects.get().secrets == {"routing_key": ROUTING_KEY}
    listed = conforms(editor("GET", "/api/v1/channels"), "GET /api/v1/channels", 200)
    assert listed["channels"][0]["secrets"] == {"routing_key": "set"}
    one = editor("GET", f"/api/v1/channels/{body['id']}")
    assert conforms(one, "GET /api/v1/channels/{pk}", 200) == body


def test_patch_keeps_secrets_not_sent_and_null_clears_them(editor):
    body = conforms(
        editor(
            "POST",
            "/api/v1/channels",
            {
                "name": "hook",
                "kind": "webhook",
                "config": {"url": "https://example.com/hook"},
                "secrets": {"secret": SIGNING_KEY},
            },
        ),
        "POST /api/v1/channels",
        201,
    )
    url = f"/api/v1/channels/{body['id']}"
    assert body["secrets"] == {"secret": "set", "url": "not set"}
    # An answer sent back as it is changes nothing.
    again = conforms(editor("PATCH", url, body), "PATCH /api/v1/channels/{pk}", 200)
    assert again["secrets"] == {"secret": "set", "url": "not set"}
    assert Channel.objects.get().secrets == {"secret": SIGNING_KEY}
    changed = editor("PATCH", url, {"enabled": False})
    assert conforms(changed, "PATCH /api/v1/channels/{pk}", 200)["enabled"] is False
    assert Channel.objects.get().secrets == {"secret": SIGNING_KEY}
    cleared = editor("PATCH", url, {"secrets": {"secret": None}})
    assert conforms(cleared, "PATCH /api/v1/channels/{pk}", 200)["secrets"]["secret"] == "not set"
    assert Channel.objects.get().secrets == {}


def test_put_replaces_the_fields_but_keeps_the_secrets(editor):
    body = new_pager(editor, enabled=False, config={"api_base": "https://x.example"})
    url = f"/api/v1/channels/{body['id']}"
    replaced = conforms(editor("PUT", url, {"name": "pager 2"}), "PUT /api/v1/channels/{pk}", 200)
    assert replaced["enabled"] is True and replaced["config"] == {}
    assert replaced["name"] == "pager 2" and replaced["secrets"] == {"routing_key": "set"}


def test_refused_channels_name_the_field_and_never_echo_the_secret(editor):
    refused = editor(
        "POST",
        "/api/v1/channels",
        {"name": "pager", "kind": "pagerduty", "secrets": {"routing_key": "bad-key-typed-7"}},
    )
    body = conforms(refused, "POST /api/v1/channels", 400)
    assert "secrets.routing_key" in body["fields"] and b"bad-key-typed-7" not in refused.content
    body = conforms(
        editor("POST", "/api/v1/channels", {"name": "x", "kind": "carrier-pigeon"}),
        "POST /api/v1/channels",
        400,
    )
    assert "kind" in body["fields"]
    body = conforms(
        editor("POST", "/api/v1/channels", {"name": "x", "kind": "webhook", "config": []}),
        "POST /api/v1/channels",
        400,
    )
    assert body["fields"] == {"config": ["must be a JSON object"]}
    body = conforms(
        editor("POST", "/api/v1/channels", {"name": "x", "kind": "webhook", "config": {}}),
        "POST /api/v1/channels",
        400,
    )
    assert "config.url" in body["fields"]
    created = new_pager(editor)
    url = f"/api/v1/channels/{created['id']}"
    body = conforms(editor("PATCH", url, {"kind": "slack"}), "PATCH /api/v1/channels/{pk}", 400)
    assert "cannot change" in body["fields"]["kind"][0]
    body = conforms(
        editor("PATCH", url, {"secrets": {"password": "x"}}), "PATCH /api/v1/channels/{pk}", 400
    )
    assert "secrets.password" in body["fields"]
    conflict = editor(
        "POST", "/api/v1/channels", {**created, "secrets": {"routing_key": ROUTING_KEY}}
    )
    assert conforms(conflict, "POST /api/v1/channels", 400)["fields"]["name"]
    assert Channel.objects.count() == 1


def test_a_channel_is_deleted(editor):
    body = new_pager(editor)
    response = editor("DELETE", f"/api/v1/channels/{body['id']}")
    conforms(response, "DELETE /api/v1/channels/{pk}", 204)
    conforms(editor("GET", f"/api/v1/channels/{body['id']}"), "GET /api/v1/channels/{pk}", 404)
    assert not Channel.objects.exists()


def test_the_test_endpoint_sends_to_a_real_receiver_and_answers_its_reply(editor, local):
    with Receiver(202, b'{"status":"success","message":"Event processed"}') as receiver:
        body = new_pager(editor, config={"api_base": receiver.url})
        response = editor("POST", f"/api/v1/channels/{body['id']}/test")
    result = conforms(response, "POST /api/v1/channels/{pk}/test", 200)
    assert result["outcome"] == "sent"
    assert result["delivery"]["purpose"] == "test" and result["delivery"]["status"] == "sent"
    (attempt,) = result["delivery"]["log"]
    assert attempt["status_code"] == 202 and "Event processed" in attempt["answer"]
    assert {r["path"] for r in receiver.requests} == {"/v2/enqueue"}
    # The routing key went to the receiver, and only there.
    assert ROUTING_KEY.encode() in receiver.requests[0]["body"]


def test_a_failed_test_answers_the_error(editor, local):
    with Receiver(400, b'{"status":"invalid event","errors":["Event object is invalid"]}') as r:
        body = new_pager(editor, config={"api_base": r.url})
        result = conforms(
            editor("POST", f"/api/v1/channels/{body['id']}/test"),
            "POST /api/v1/channels/{pk}/test",
            200,
        )
    assert result["outcome"] == "failed"
    attempt = result["delivery"]["log"][0]
    assert attempt["status_code"] == 400 and "the receiver answered 400" in attempt["error"]
    assert "Event object is invalid" in attempt["answer"]
    assert conforms(
        editor("POST", "/api/v1/channels/999999/test"), "POST /api/v1/channels/{pk}/test", 404
    )


# --- Routes ------------------------------------------------------------------------


def test_routes_are_created_changed_and_deleted(editor):
    pager, hook = pagerduty(), webhook()
    body = conforms(
        editor(
            "POST",
            "/api/v1/routes",
            {
                "name": "critical",
                "severity": "critical",
                "channels": [hook.pk],
                "escalate_after_minutes": 10,
                "escalate_to": [pager.pk],
            },
        ),
        "POST /api/v1/routes",
        201,
    )
    assert body["channels"] == [hook.pk] and body["escalate_to"] == [pager.pk]
    url = f"/api/v1/routes/{body['id']}"
    patched = conforms(
        editor("PATCH", url, {"channels": [hook.pk, pager.pk]}), "PATCH /api/v1/routes/{pk}", 200
    )
    assert patched["channels"] == sorted([hook.pk, pager.pk]) and patched["escalate_to"] == [
        pager.pk
    ]
    replaced = conforms(editor("PUT", url, {"name": "all"}), "PUT /api/v1/routes/{pk}", 200)
    assert (
        replaced["channels"] == [] and replaced["severity"] == "" and replaced["escalate_to"] == []
    )
    listed = conforms(editor("GET", "/api/v1/routes"), "GET /api/v1/routes", 200)
    assert [r["name"] for r in listed["routes"]] == ["all"]
    conforms(editor("DELETE", url), "DELETE /api/v1/routes/{pk}", 204)
    assert not Route.objects.exists()


def test_refused_routes_say_why(editor):
    pager = pagerduty()
    cases = [
        ({"name": "r", "channels": [999999]}, "channels"),
        ({"name": "r", "severity": "apocalyptic"}, "severity"),
        ({"name": "r", "escalate_after_minutes": 5}, "escalate_to"),
        ({"name": "r", "escalate_to": [pager.pk]}, "escalate_after_minutes"),
        ({"name": "r", "channels": "all"}, "channels"),
        ({"name": "r", "colour": "red"}, "colour"),
    ]
    for data, field in cases:
        body = conforms(editor("POST", "/api/v1/routes", data), "POST /api/v1/routes", 400)
        assert field in body["fields"], (data, body)
    assert not Route.objects.exists()


# --- Deliveries --------------------------------------------------------------------


def test_deliveries_are_listed_filtered_and_detailed_with_their_attempts(reader):
    pager, hook = pagerduty(), webhook()
    failed = failed_delivery(pager, notification("Disk full"), error=f"bad key {ROUTING_KEY}")
    sent = Delivery.objects.create(
        notification=notification("CPU high"), channel=hook, status="sent", attempts=1
    )
    page = conforms(reader("GET", "/api/v1/deliveries"), "GET /api/v1/deliveries", 200)
    assert page["count"] == 2 and {d["id"] for d in page["deliveries"]} == {failed.pk, sent.pk}
    only = conforms(
        reader("GET", "/api/v1/deliveries?status=failed"), "GET /api/v1/deliveries", 200
    )
    assert [d["id"] for d in only["deliveries"]] == [failed.pk]
    assert only["deliveries"][0]["last_error"] == "bad key ••••••"
    by_name = reader("GET", "/api/v1/deliveries?channel=ops+hook")
    assert [d["id"] for d in conforms(by_name, "GET /api/v1/deliveries", 200)["deliveries"]] == [
        sent.pk
    ]
    by_id = reader("GET", f"/api/v1/deliveries?channel={pager.pk}")
    assert [d["id"] for d in by_id.json()["deliveries"]] == [failed.pk]
    detail = conforms(
        reader("GET", f"/api/v1/deliveries/{failed.pk}"), "GET /api/v1/deliveries/{pk}", 200
    )
    assert [a["number"] for a in detail["log"]] == [1, 2, 3]
    assert detail["log"][-1]["outcome"] == "failed" and detail["log"][0]["status_code"] == 500
    assert detail["notification"]["title"] == "Disk full" and detail["key"] == str(failed.key)
    conforms(reader("GET", "/api/v1/deliveries?status=lost"), "GET /api/v1/deliveries", 400)
    conforms(reader("GET", "/api/v1/deliveries?notification=x"), "GET /api/v1/deliveries", 400)
    conforms(reader("GET", "/api/v1/deliveries?page=9"), "GET /api/v1/deliveries", 404)
    conforms(reader("GET", "/api/v1/deliveries/999999"), "GET /api/v1/deliveries/{pk}", 404)


def test_the_delivery_list_is_paginated_with_a_constant_number_of_queries(reader):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    hook = webhook()
    for k in range(3):
        failed_delivery(hook, notification(f"n {k}"), age=timedelta(minutes=k))
    reader("GET", "/api/v1/deliveries")  # the token's first use is recorded once
    with CaptureQueriesContext(connection) as few:
        reader("GET", "/api/v1/deliveries?per_page=2")
    for k in range(3, 12):
        failed_delivery(hook, notification(f"n {k}"), age=timedelta(minutes=k))
    with CaptureQueriesContext(connection) as many:
        response = reader("GET", "/api/v1/deliveries?per_page=10&page=2")
    body = conforms(response, "GET /api/v1/deliveries", 200)
    assert body["count"] == 12 and body["pages"] == 2 and len(body["deliveries"]) == 2
    assert len(many) == len(few)


# --- /metrics ----------------------------------------------------------------------


def test_metrics_count_deliveries_by_status_without_tests(admin_client):
    hook = webhook()
    failed_delivery(hook)
    failed_delivery(hook)
    Delivery.objects.create(notification=notification("x"), channel=hook, status="sent")
    Delivery.objects.create(channel=hook, purpose="test", status="failed")
    text = admin_client.get("/metrics").content.decode()
    assert 'vigil_notify_deliveries{status="failed"} 2' in text
    assert 'vigil_notify_deliveries{status="sent"} 1' in text
    assert 'vigil_notify_deliveries{status="retry"} 0' in text
    assert "# TYPE vigil_notify_deliveries gauge" in text


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("root", password="secret-pass-1"))
    return client
