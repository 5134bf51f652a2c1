"""The alerts REST API: rules, backtests, alerts, silences, notifications."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.alerts import serialize as ser
from vigil.alerts.models import Alert, AlertEvent, Notification, Rule, Silence
from vigil.api.models import ApiToken
from vigil.testing import basic, make_server, store

pytestmark = pytest.mark.django_db
FIRING, PENDING = Alert.State.FIRING, Alert.State.PENDING
WRITE_PERMISSIONS = (
    "add_rule",
    "change_rule",
    "delete_rule",
    "change_alert",
    "add_silence",
    "delete_silence",
)
CPU_RULE = {"name": "CPU high", "metric": "cpu_usage_percent", "operator": ">", "threshold": 90}


def user_with(name: str, *codenames: str) -> User:
    user = User.objects.create_user(name, password="secret-pass-1")
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="alerts", codename__in=codenames)
    )
    return user


class Api:
    """A client that speaks JSON with an API token."""

    def __init__(self, user: User | None) -> None:
        # CSRF is enforced as in production: token requests must not need it.
        self.client = Client(enforce_csrf_checks=True)
        self.headers = {}
        if user is not None:
            self.headers["HTTP_AUTHORIZATION"] = f"Token {ApiToken.issue(user, 'test')[1]}"

    def __call__(self, method: str, url: str, data: object = None, raw: bytes | None = None):
        body = raw if raw is not None else b"" if data is None else orjson.dumps(data)
        response = self.client.generic(
            method, url, body, content_type="application/json", **self.headers
        )
        assert response["Content-Type"] == "application/json" or response.status_code == 204
        return response

    def ok(self, method: str, url: str, data: object = None, status: int = 200) -> dict:
        response = self(method, url, data)
        assert response.status_code == status, response.content
        return response.json() if status != 204 else {}


@pytest.fixture
def editor() -> Api:
    return Api(user_with("editor", *WRITE_PERMISSIONS))


@pytest.fixture
def reader() -> Api:
    return Api(user_with("reader"))


@pytest.fixture(autouse=True)
def own_rules_only():
    Rule.objects.all().delete()


def make_rule(name: str = "CPU high", **kw) -> Rule:
    kw.setdefault("metric", "cpu_usage_percent")
    kw.setdefault("operator", ">")
    kw.setdefault("threshold", 90.0)
    return Rule.objects.create(name=name, **kw)


def make_alert(rule: Rule, server=None, state: int = FIRING, **kw) -> Alert:
    now = timezone.now()
    kw.setdefault("since", now - timedelta(minutes=10))
    if state == FIRING:
        kw.setdefault("fired_at", now - timedelta(minutes=5))
    kw.setdefault("value", 93.5)
    kw.setdefault("changed_at", now)
    return Alert.objects.create(rule=rule, server=server, state=state, **kw)


# --- Access -------------------------------------------------------------------

ENDPOINTS = [
    ("GET", "/api/v1/rules"),
    ("POST", "/api/v1/rules"),
    ("GET", "/api/v1/rules/1"),
    ("PUT", "/api/v1/rules/1"),
    ("PATCH", "/api/v1/rules/1"),
    ("DELETE", "/api/v1/rules/1"),
    ("POST", "/api/v1/rules/backtest"),
    ("GET", "/api/v1/alerts"),
    ("GET", "/api/v1/alerts/1"),
    ("POST", "/api/v1/alerts/1/acknowledge"),
    ("GET", "/api/v1/silences"),
    ("POST", "/api/v1/silences"),
    ("DELETE", "/api/v1/silences/1"),
    ("GET", "/api/v1/notifications"),
]


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_it_answers_401_without_credentials(method, url):
    response = Api(None)(method, url, {})
    assert response.status_code == 401
    assert "authentication required" in response.json()["error"]


@pytest.mark.parametrize(("method", "url"), [e for e in ENDPOINTS if e[0] != "GET"])
def test_it_answers_403_to_a_write_without_the_permission(reader, method, url):
    rule = make_rule(pk=1)
    make_alert(rule, pk=1)
    Silence.objects.create(pk=1, ends_at=timezone.now() + timedelta(hours=1))
    response = reader(method, url, {"comment": "x"})
    assert response.status_code == 403
    assert response.json()["error"].startswith("permission denied: this needs alerts.")
    assert Rule.objects.filter(pk=1, name="CPU high").exists()
    assert Silence.objects.get(pk=1).ends_at > timezone.now()
    assert Alert.objects.get(pk=1).acknowledged_at is None


def test_it_lets_any_user_read(reader):
    rule = make_rule()
    make_alert(rule, make_server("web-1"))
    assert [r["name"] for r in reader.ok("GET", "/api/v1/rules")["rules"]] == ["CPU high"]
    assert reader.ok("GET", "/api/v1/alerts")["count"] == 1
    assert reader.ok("GET", "/api/v1/silences")["count"] == 0
    assert reader.ok("GET", "/api/v1/notifications")["count"] == 0


def test_it_accepts_basic_auth_and_the_session_with_its_csrf_token(client):
    user = user_with("alice", *WRITE_PERMISSIONS)
    response = client.get("/api/v1/rules", **basic("alice", "secret-pass-1"))
    assert response.status_code == 200
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    post = {"path": "/api/v1/rules", "content_type": "application/json"}
    refused = browser.post(data=orjson.dumps(CPU_RULE), **post)
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]
    browser.get("/login/")  # sets the CSRF cookie, as any page does
    token = browser.cookies["csrftoken"].value
    accepted = browser.post(data=orjson.dumps(CPU_RULE), HTTP_X_CSRFTOKEN=token, **post)
    assert accepted.status_code == 201


def test_it_answers_405_with_the_allowed_methods(editor):
    response = editor("DELETE", "/api/v1/alerts")
    assert response.status_code == 405
    assert response["Allow"] == "GET"


@pytest.mark.parametrize(
    "url", ["/api/v1/rules/999", "/api/v1/alerts/999", "/api/v1/rules/99999999999999999999999"]
)
def test_it_answers_404_to_an_unknown_id(editor, url):
    response = editor("GET", url)
    assert response.status_code == 404
    assert response.json()["error"]


# --- Rules --------------------------------------------------------------------


def test_it_creates_reads_changes_and_deletes_a_rule(editor):
    server = make_server("db-1")
    created = editor.ok(
        "POST",
        "/api/v1/rules",
        {**CPU_RULE, "scope": "server", "server": server.pk, "for_seconds": 300},
        status=201,
    )
    assert created["id"] == Rule.objects.get(name="CPU high").pk
    assert (created["server"], created["threshold"], created["aggregation"]) == (
        server.pk,
        90.0,
        "last",
    )
    url = f"/api/v1/rules/{created['id']}"
    assert editor.ok("GET", url) == created

    patched = editor.ok("PATCH", url, {"threshold": 95.5, "recovery_threshold": 80})
    assert (patched["threshold"], patched["recovery_threshold"], patched["for_seconds"]) == (
        95.5,
        80.0,
        300,
    )
    # PUT replaces: what it does not send is back to its default.
    replaced = editor.ok("PUT", url, {**CPU_RULE, "name": "CPU very high"})
    assert (replaced["name"], replaced["scope"], replaced["server"]) == (
        "CPU very high",
        "all",
        None,
    )
    assert (replaced["for_seconds"], replaced["recovery_threshold"]) == (0, None)
    assert replaced["created"] == created["created"]

    editor.ok("DELETE", url, status=204)
    assert not Rule.objects.exists()


def test_it_makes_host_down_rules_watch_up(editor):
    rule = editor.ok(
        "POST", "/api/v1/rules", {"name": "down", "kind": "host_down", "operator": ""}, status=201
    )
    assert rule["metric"] == "up"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({**CPU_RULE, "name": "x" * 100_000}, "name", "at most 200 characters"),
        ({**CPU_RULE, "description": "x" * 20_000}, "description", "at most 10000"),
        ({**CPU_RULE, "name": "CPU\x00high"}, "name", "NUL"),
        ({**CPU_RULE, "matchers": "device=~(unclosed"}, "matchers", "bad regular expression"),
        ({**CPU_RULE, "matchers": "no operator here"}, "matchers", "not a label matcher"),
        ({**CPU_RULE, "threshold": "90"}, "threshold", "must be a number"),
        ({**CPU_RULE, "threshold": True}, "threshold", "must be a number"),
        ({**CPU_RULE, "threshold": 1e301}, "threshold", "finite"),
        ({**CPU_RULE, "threshold": None}, "threshold", "needs a threshold"),
        ({**CPU_RULE, "window_seconds": -5}, "window_seconds", "between 0 and"),
        ({**CPU_RULE, "window_seconds": 1.5}, "window_seconds", "whole number"),
        ({**CPU_RULE, "window_seconds": 2**40}, "window_seconds", "between 0 and"),
        (b'{"window_seconds": 1180591620717411303424}', "window_seconds", "whole number"),
        ({**CPU_RULE, "enabled": "yes"}, "enabled", "true or false"),
        ({**CPU_RULE, "kind": "magic"}, "kind", "not a valid choice"),
        ({**CPU_RULE, "aggregation": "p101"}, "aggregation", "percentile"),
        ({**CPU_RULE, "operator": "=="}, "operator", "not a valid choice"),
        ({**CPU_RULE, "scope": "server"}, "server", "Choose the server"),
        ({**CPU_RULE, "server": 424242}, "server", "no server with id 424242"),
        ({**CPU_RULE, "server": "web-1"}, "server", "must be the id"),
        ({**CPU_RULE, "recovery_threshold": 95}, "recovery_threshold", "at or below"),
        ({**CPU_RULE, "owner": "mallory"}, "owner", "unknown field"),
        ({**CPU_RULE, "is_default": True}, "is_default", "unknown field"),
        ({**CPU_RULE, "id": 7}, "id", "unknown field"),
        ({"metric": "cpu_usage_percent", "threshold": 1}, "name", "blank"),
        ({**CPU_RULE, "kind": "rate", "window_seconds": 10}, "window_seconds", "at least 60"),
    ],
)
def test_it_answers_400_naming_the_field_of_a_bad_rule(editor, data, field, message):
    if isinstance(data, bytes):
        response = editor("POST", "/api/v1/rules", raw=data)
    else:
        response = editor("POST", "/api/v1/rules", data)
    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["error"].startswith("invalid rule")
    assert message in " ".join(answer["fields"][field])
    assert not Rule.objects.exists()


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=300),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=5,
)
RULE_KEYS = st.sampled_from(sorted(ser.RULE_FIELDS) + ["days", "id", "", "\x00", "name\x00"])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.dictionaries(RULE_KEYS, JSON_VALUES, max_size=8))
def test_it_never_fails_on_any_json_object(editor, data):
    for url in ("/api/v1/rules", "/api/v1/rules/backtest", "/api/v1/silences"):
        response = editor("POST", url, data)
        assert response.status_code in (200, 201, 400), response.content
        if response.status_code == 400:
            assert response.json()["error"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"threshold": NaN}', "not valid JSON"),
        (b'{"name": "\xff\xfe"}', "not valid JSON"),
        (b"[1, 2, 3]", "must be a JSON object"),
        (b'"a string"', "must be a JSON object"),
        (b'{"window_seconds": 1' + b"0" * 400 + b"}", "not valid JSON"),
    ],
)
def test_it_answers_400_to_a_body_that_is_not_a_json_object(editor, raw, message):
    response = editor("POST", "/api/v1/rules", raw=raw)
    assert response.status_code == 400
    assert message in orjson.dumps(response.json()).decode()


def test_it_answers_413_to_a_huge_body(editor):
    response = editor("POST", "/api/v1/rules", {**CPU_RULE, "matchers": "a=b\n" * 100_000})
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]


def test_it_answers_400_to_a_second_rule_of_the_same_name(editor):
    make_rule()
    response = editor("POST", "/api/v1/rules", CPU_RULE)
    assert response.status_code == 400
    assert "already exists" in response.json()["fields"]["name"][0]


def test_it_keeps_a_rule_unchanged_when_an_update_is_refused(editor):
    rule = make_rule(for_seconds=60)
    response = editor("PATCH", f"/api/v1/rules/{rule.pk}", {"for_seconds": 0, "threshold": "x"})
    assert response.status_code == 400
    rule.refresh_from_db()
    assert (rule.for_seconds, rule.threshold) == (60, 90.0)


def test_it_backtests_a_rule_sent_in_the_body(editor):
    now = int(timezone.now().timestamp())
    start = now - now % 300 - 3600
    store(make_server("web-1"), "cpu_usage_percent", [(t, 95.0) for t in range(start, now, 10)])
    make_rule()  # the same name is fine for a draft

    result = editor.ok(
        "POST", "/api/v1/rules/backtest", {**CPU_RULE, "days": 1, "for_seconds": 600}
    )

    assert (result["fired"], result["series"], result["step"]) == (1, 1, 60)
    [episode] = result["episodes"]
    assert (episode["server"], episode["fired_at"], episode["resolved_at"]) == (
        "web-1",
        start + 600,
        None,
    )
    assert result["charts"][0]["points"][-1][1] == 95.0
    assert Rule.objects.count() == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**CPU_RULE, "days": 0}, "days"),
        ({**CPU_RULE, "days": "7"}, "days"),
        ({**CPU_RULE, "days": 365}, "days"),
        ({**CPU_RULE, "threshold": None}, "threshold"),
        ({**CPU_RULE, "matchers": "a=~["}, "matchers"),
    ],
)
def test_it_answers_400_to_a_bad_backtest(editor, data, message):
    response = editor("POST", "/api/v1/rules/backtest", data)
    assert response.status_code == 400
    assert message in orjson.dumps(response.json()).decode()


def test_it_answers_400_to_a_backtest_of_too_many_series(editor, monkeypatch):
    from vigil.alerts import backtest

    monkeypatch.setattr(backtest, "MAX_SERIES", 1)
    for name in ("web-1", "web-2"):
        store(make_server(name), "cpu_usage_percent", [(1_790_000_000, 1.0)])
    response = editor("POST", "/api/v1/rules/backtest", CPU_RULE)
    assert response.status_code == 400
    assert "more than 1" in response.json()["error"]


# --- Alerts -------------------------------------------------------------------


def test_it_lists_alerts_by_section_server_and_rule(reader):
    web, db = make_server("web-1"), make_server("db-1")
    cpu, disk = make_rule(), make_rule("Disk full", metric="filesystem_used_percent")
    firing = make_alert(cpu, web, labels={"core": "all"})
    pending = make_alert(cpu, db, PENDING)
    acked = make_alert(disk, web, acknowledged_at=timezone.now())
    muted = make_alert(disk, db, silenced=True)
    make_alert(cpu, None, Alert.State.OK, location=None)

    def ids(query: str) -> list[int]:
        return sorted(a["id"] for a in reader.ok("GET", f"/api/v1/alerts{query}")["alerts"])

    assert ids("") == sorted([firing.pk, pending.pk, acked.pk, muted.pk])
    assert ids("?state=firing") == [firing.pk]
    assert ids("?state=pending") == [pending.pk]
    assert ids("?state=acknowledged") == [acked.pk]
    assert ids("?state=silenced") == [muted.pk]
    assert len(ids("?state=all")) == 5
    assert ids("?server=web-1") == sorted([firing.pk, acked.pk])
    assert ids(f"?rule={disk.pk}&state=firing") == []
    assert ids("?server=nobody") == []
    one = reader.ok("GET", "/api/v1/alerts?state=firing")["alerts"][0]
    assert one["rule"] == {"id": cpu.pk, "name": "CPU high", "severity": "warning"}
    assert (one["server"]["name"], one["labels"], one["state"], one["value"]) == (
        "web-1",
        {"core": "all"},
        "firing",
        93.5,
    )


@pytest.mark.parametrize(
    "query",
    ["?state=on-fire", "?rule=abc", "?rule=1" + "0" * 30, "?page=0", "?per_page=100000", "?page=x"],
)
def test_it_answers_400_to_a_bad_alert_filter(reader, query):
    response = reader("GET", f"/api/v1/alerts{query}")
    assert response.status_code == 400
    assert response.json()["error"]


def test_it_answers_400_to_nul_characters_in_parameters(reader):
    response = reader("GET", "/api/v1/alerts?server=web%00-1")
    assert response.status_code == 400
    assert "NUL" in response.json()["error"]


def test_it_fires_acknowledges_and_shows_an_alert_with_its_events(editor, settings):
    from vigil.alerts.tasks import evaluate_alerts

    settings.ALERT_GROUP_WAIT_SECONDS = 0
    make_rule()
    now = int(timezone.now().timestamp())
    store(make_server("web-1"), "cpu_usage_percent", [(now - 10, 97.0)])
    evaluate_alerts(now)
    [alert] = editor.ok("GET", "/api/v1/alerts?state=firing")["alerts"]

    url = f"/api/v1/alerts/{alert['id']}/acknowledge"
    acked = editor.ok("POST", url, {"comment": "looking at it <b>now</b>"})
    assert (acked["section"], acked["acknowledged_by"], acked["ack_comment"]) == (
        "acknowledged",
        "editor",
        "looking at it <b>now</b>",
    )
    again = editor("POST", url, {"comment": "me too"})
    assert again.status_code == 409

    shown = editor.ok("GET", f"/api/v1/alerts/{alert['id']}")
    assert [e["kind"] for e in shown["events"]] == ["acknowledged", "firing"]
    assert shown["events"][0]["text"] == "editor: looking at it <b>now</b>"
    assert editor.ok("GET", "/api/v1/notifications")["notifications"][0]["kind"] in (
        "acknowledged",
        "firing",
    )


@pytest.mark.parametrize(
    "data", [{"comment": 5}, {"comment": "x" * 3000}, {"comment": "a\x00b"}, {"who": "me"}]
)
def test_it_answers_400_to_a_bad_acknowledgement(editor, data):
    alert = make_alert(make_rule())
    response = editor("POST", f"/api/v1/alerts/{alert.pk}/acknowledge", data)
    assert response.status_code == 400
    assert Alert.objects.get(pk=alert.pk).acknowledged_at is None
    assert not AlertEvent.objects.exists()


# --- Silences -----------------------------------------------------------------


def test_it_creates_a_silence_and_expires_it(editor):
    server = make_server("web-1")
    rule = make_rule()
    created = editor.ok(
        "POST",
        "/api/v1/silences",
        {
            "comment": "kernel upgrade",
            "server": server.pk,
            "rule": rule.pk,
            "matchers": "mountpoint=/",
            "ends_at": "2099-01-01T00:00:00Z",
        },
        status=201,
    )
    assert (created["server"], created["rule"], created["active"], created["created_by"]) == (
        server.pk,
        rule.pk,
        True,
        "editor",
    )
    assert created["ends_at"] == "2099-01-01T00:00:00Z"
    listed = editor.ok("GET", "/api/v1/silences")["silences"]
    assert [s["id"] for s in listed] == [created["id"]]

    expired = editor.ok("DELETE", f"/api/v1/silences/{created['id']}")
    assert (expired["active"], expired["expired"]) == (False, True)
    silence = Silence.objects.get(pk=created["id"])
    assert timezone.now() - silence.ends_at < timedelta(seconds=5)
    assert editor.ok("GET", "/api/v1/silences")["silences"] == []
    assert editor.ok("GET", "/api/v1/silences?expired=1")["count"] == 1
    # Expiring twice changes nothing.
    assert editor.ok("DELETE", f"/api/v1/silences/{created['id']}")["ends_at"] == expired["ends_at"]


def test_it_creates_a_weekly_silence_with_unix_times(editor):
    now = int(timezone.now().timestamp())
    created = editor.ok(
        "POST",
        "/api/v1/silences",
        {
            "starts_at": now,
            "ends_at": now + 30 * 86400,
            "weekdays": "5,6",
            "window_start": "22:00",
            "window_minutes": 600,
        },
        status=201,
    )
    assert (created["weekdays"], created["window_start"], created["window_minutes"]) == (
        "5,6",
        "22:00:00",
        600,
    )


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "ends_at"),
        ({"ends_at": "2000-01-01T00:00:00Z"}, "ends_at"),
        ({"ends_at": "next tuesday"}, "ends_at"),
        ({"ends_at": 1e300}, "ends_at"),
        ({"ends_at": "2099-01-01", "weekdays": "8"}, "weekdays"),
        ({"ends_at": "2099-01-01", "weekdays": "1", "window_start": "25:00"}, "window_start"),
        ({"ends_at": "2099-01-01", "matchers": "a=~(("}, "matchers"),
        ({"ends_at": "2099-01-01", "comment": "x" * 501}, "comment"),
        ({"ends_at": "2099-01-01", "until_resolved": 999}, "until_resolved"),
        ({"ends_at": "2099-01-01", "created_by": 1}, "created_by"),
    ],
)
def test_it_answers_400_naming_the_field_of_a_bad_silence(editor, data, field):
    response = editor("POST", "/api/v1/silences", data)
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert not Silence.objects.exists()


# --- Notifications and query counts --------------------------------------------


def test_it_pages_the_notification_queue_newest_first(reader):
    rule = make_rule()
    now = timezone.now()
    made = [
        Notification.objects.create(
            kind="firing",
            rule=rule,
            severity="warning",
            title=f"n{i}",
            created=now - timedelta(minutes=i),
        )
        for i in range(5)
    ]
    made[0].alerts.add(make_alert(rule))
    first = reader.ok("GET", "/api/v1/notifications?per_page=2")
    assert (first["count"], first["pages"]) == (5, 3)
    assert [n["title"] for n in first["notifications"]] == ["n0", "n1"]
    assert first["notifications"][0]["alerts"] == [made[0].alerts.get().pk]
    last = reader.ok("GET", "/api/v1/notifications?per_page=2&page=3")
    assert [n["title"] for n in last["notifications"]] == ["n4"]
    assert reader("GET", "/api/v1/notifications?per_page=2&page=4").status_code == 404


@pytest.mark.parametrize("url", ["/api/v1/rules", "/api/v1/alerts", "/api/v1/silences"])
def test_lists_take_the_same_number_of_queries_for_1_or_20_rows(
    reader, url, django_assert_num_queries
):
    def fill(first: int, count: int) -> None:
        for i in range(first, first + count):
            server = make_server(f"web-{i}")
            rule = make_rule(f"rule {i}", description="{server} is hot")
            alert = make_alert(rule, server, acknowledged_at=timezone.now())
            alert.acknowledged_by = User.objects.get(username="reader")
            alert.save()
            Silence.objects.create(server=server, ends_at=timezone.now() + timedelta(hours=1))
            Notification.objects.create(kind="firing", rule=rule, severity="info", title="t")

    fill(0, 1)
    reader("GET", url)  # the token's last use is recorded once a minute
    with CaptureQueriesContext(connection) as one:
        assert reader("GET", url).status_code == 200
    fill(1, 19)
    with django_assert_num_queries(len(one.captured_queries)):
        response = reader("GET", url)
    assert len(next(v for v in response.json().values() if isinstance(v, list))) == 20


def test_the_notification_list_takes_a_constant_number_of_queries(reader):
    rule = make_rule()
    counts = []
    for total in (1, 20):
        while Notification.objects.count() < total:
            n = Notification.objects.create(kind="firing", rule=rule, severity="info", title="t")
            n.alerts.add(make_alert(rule, make_server(f"s-{n.pk}")))
        reader("GET", "/api/v1/notifications")
        with CaptureQueriesContext(connection) as queries:
            reader("GET", "/api/v1/notifications")
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1]
