from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from vigil.alerts.models import Alert, AlertEvent, Notification, Rule, Silence
from vigil.servers.models import Location, Tag
from vigil.testing import make_server, store

pytestmark = pytest.mark.django_db
EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
FIRING, PENDING, OK = Alert.State.FIRING, Alert.State.PENDING, Alert.State.OK


def user_with(name: str, *codenames: str) -> User:
    user = User.objects.create_user(name, password="secret-pass-1")
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="alerts", codename__in=codenames)
    )
    return user


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("root", password="secret-pass-1"))
    return client


@pytest.fixture
def viewer_client(client):
    client.force_login(User.objects.create_user("viewer", password="secret-pass-1"))
    return client


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
    return Alert.objects.create(rule=rule, server=server, state=state, **kw)


def html_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


# Access


@pytest.mark.parametrize(
    "url",
    [
        "/alerts/",
        "/alerts/?tab=history",
        "/alerts/silences/",
        "/alerts/silences/new",
        "/alerts/rules/",
        "/alerts/rules/new",
        "/alerts/rules/1/",
    ],
)
def test_every_alert_page_sends_anonymous_users_to_log_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_anonymous_users_cannot_acknowledge_silence_or_backtest(client):
    alert = make_alert(make_rule(), make_server())
    silence = Silence.objects.create(
        comment="x", rule=alert.rule, ends_at=timezone.now() + timedelta(hours=1)
    )
    for url in (
        f"/alerts/{alert.pk}/acknowledge",
        "/alerts/silences/new",
        f"/alerts/silences/{silence.pk}/expire",
        "/alerts/rules/backtest",
        f"/alerts/rules/{alert.rule_id}/enabled",
    ):
        response = client.post(url, {"comment": "x"})
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url
    alert.refresh_from_db()
    silence.refresh_from_db()
    assert alert.acknowledged_at is None and silence.ends_at > timezone.now()


def test_a_user_without_rights_sees_alerts_but_cannot_act_on_them(viewer_client):
    alert = make_alert(make_rule(), make_server())
    html = html_of(viewer_client.get("/alerts/"))
    assert "CPU high" in html
    assert ">Acknowledge</button>" not in html and "Silence…" not in html
    assert 'href="/alerts/rules/' not in html and 'href="/alerts/silences/' not in html
    assert viewer_client.post(f"/alerts/{alert.pk}/acknowledge").status_code == 403
    for url in ("/alerts/silences/", "/alerts/silences/new", "/alerts/rules/", "/alerts/rules/new"):
        assert viewer_client.get(url).status_code == 403, url
    assert viewer_client.get(f"/alerts/rules/{alert.rule_id}/").status_code == 403
    assert viewer_client.post("/alerts/rules/backtest", {"kind": "threshold"}).status_code == 403
    alert.refresh_from_db()
    assert alert.acknowledged_at is None


# The alerts page


def test_alerts_are_sorted_into_firing_pending_acknowledged_and_silenced(admin_client):
    server = make_server("web-1")
    rule = make_rule()
    firing = make_alert(rule, server, labels={"cpu": "0"})
    pending = make_alert(rule, server, PENDING, labels={"cpu": "1"}, fired_at=None)
    acked = make_alert(
        rule,
        server,
        labels={"cpu": "2"},
        acknowledged_at=timezone.now(),
        acknowledged_by=User.objects.get(username="root"),
        ack_comment="swapping the fan",
    )
    silence = Silence.objects.create(
        comment="planned reboot", rule=rule, ends_at=timezone.now() + timedelta(hours=2)
    )
    silenced = make_alert(rule, server, labels={"cpu": "3"}, silenced=True)
    suppressed = make_alert(rule, server, labels={"cpu": "4"}, suppressed="server down")
    make_alert(rule, server, OK, labels={"cpu": "5"})

    def rows(tab: str) -> set[int]:
        html = html_of(admin_client.get(f"/alerts/?tab={tab}"))
        return {a.pk for a in Alert.objects.all() if f'data-alert="{a.pk}"' in html}

    assert rows("firing") == {firing.pk}
    assert rows("pending") == {pending.pk}
    assert rows("acknowledged") == {acked.pk}
    assert rows("silenced") == {silenced.pk, suppressed.pk}
    html = html_of(admin_client.get("/alerts/?tab=silenced"))
    assert f"silenced by “{silence.comment}”" in html
    assert "suppressed: server down" in html
    html = html_of(admin_client.get("/alerts/?tab=acknowledged"))
    assert "acknowledged by root" in html and "swapping the fan" in html


def test_a_firing_alert_shows_rule_severity_server_labels_value_time_and_flapping(admin_client):
    paris = Location.objects.create(name="Paris")
    server = make_server("db-1", location=paris)
    rule = make_rule(
        "Disk full",
        severity="critical",
        metric="filesystem_used_percent",
        description="{label:mountpoint} on {server} is {value}% full",
    )
    make_alert(rule, server, labels={"mountpoint": "/data"}, value=97.25, flapping=True)
    html = html_of(admin_client.get("/alerts/"))
    assert "Disk full" in html and 'class="badge sev-critical"' in html
    assert f'href="/servers/{server.pk}/"' in html and "Paris" in html
    assert "mountpoint=/data" in html and "97.2 %" in html and "limit &gt; 90.0 %" in html
    assert "/data on db-1 is 97.25% full" in html
    assert "fired 5 min ago" in html and ">flapping<" in html


def test_a_forecast_alert_says_when_it_reaches_the_limit(admin_client):
    rule = make_rule("Full soon", kind="forecast", metric="filesystem_used_percent", threshold=100)
    predicted = timezone.now() + timedelta(hours=5, minutes=3)
    make_alert(rule, make_server(), predicted_at=predicted)
    html = html_of(admin_client.get("/alerts/"))
    assert "reaches the limit in 5 h" in html


def test_a_location_outage_shows_its_location(admin_client):
    rule = Rule.objects.get(kind="host_down")
    make_alert(rule, None, location=Location.objects.create(name="Frankfurt"))
    html = html_of(admin_client.get("/alerts/"))
    assert "location Frankfurt" in html


def test_the_navigation_counts_alerts_that_need_someone(admin_client):
    rule = make_rule()
    for i in range(3):
        make_alert(rule, make_server(f"web-{i}"))
    make_alert(rule, make_server("web-9"), silenced=True)
    make_alert(rule, make_server("web-8"), PENDING)
    html = html_of(admin_client.get("/"))
    assert 'title="3 firing alerts">3</span>' in html


def test_the_history_lists_events_newest_first_a_page_at_a_time(admin_client):
    rule = make_rule()
    server = make_server("web-1")
    alert = make_alert(rule, server)
    start = timezone.now() - timedelta(hours=2)
    AlertEvent.objects.bulk_create(
        AlertEvent(
            alert=alert,
            rule=rule,
            server=server,
            kind="firing" if i % 2 else "resolved",
            at=start + timedelta(minutes=i),
            text=f"note-{i:02}",
        )
        for i in range(60)
    )
    first = html_of(admin_client.get("/alerts/?tab=history"))
    assert first.count("note-") == 50
    assert first.index("note-59") < first.index("note-58") < first.index("note-10")
    assert "note-09" not in first and "page 1 of 2" in first
    second = html_of(admin_client.get("/alerts/?tab=history&page=2"))
    assert second.count("note-") == 10 and "note-00" in second


def test_the_alerts_page_makes_the_same_queries_for_one_or_fifty_alerts(
    admin_client, django_assert_num_queries
):
    tag = Tag.objects.create(name="web")
    rule = make_rule()
    Silence.objects.create(comment="web", tag=tag, ends_at=timezone.now() + timedelta(hours=1))

    def add(n: int) -> None:
        for i in range(n):
            server = make_server(f"web-{Alert.objects.count():03}")
            server.tags.add(tag)
            make_alert(rule, server, state=(FIRING, PENDING)[i % 2], silenced=i % 3 == 0)
            AlertEvent.objects.create(
                alert=Alert.objects.last(), rule=rule, kind="firing", at=timezone.now()
            )

    add(1)
    # session, user, live alerts, active silences, tags, failed deliveries, navigation count
    with django_assert_num_queries(7):
        html_of(admin_client.get("/alerts/?tab=silenced"))
    add(49)
    with django_assert_num_queries(7):
        html = html_of(admin_client.get("/alerts/?tab=silenced"))
    assert html.count("data-alert=") == 18
    # ... and for the history: its count and its page
    with django_assert_num_queries(9):
        html_of(admin_client.get("/alerts/?tab=history"))


# Acknowledging


def test_acknowledging_a_notified_alert_queues_an_acknowledged_notification(admin_client):
    alert = make_alert(make_rule(), make_server("web-1"), notified_at=timezone.now())
    response = admin_client.post(
        f"/alerts/{alert.pk}/acknowledge", {"comment": "on it", "next": "/alerts/"}, follow=True
    )
    html = html_of(response)
    assert "Acknowledged: CPU high on web-1." in html
    alert.refresh_from_db()
    assert alert.acknowledged_by.username == "root" and alert.ack_comment == "on it"
    notification = Notification.objects.get()
    assert notification.kind == "acknowledged" and list(notification.alerts.all()) == [alert]
    event = AlertEvent.objects.get(kind="acknowledged")
    assert event.text == "root: on it"


def test_acknowledging_an_alert_nobody_was_told_about_notifies_no_one(client):
    client.force_login(user_with("oncall", "change_alert"))
    alert = make_alert(make_rule(), make_server("web-1"))
    response = client.post(f"/alerts/{alert.pk}/acknowledge", {"comment": ""})
    assert response.status_code == 302 and response["Location"] == "/alerts/"
    alert.refresh_from_db()
    assert alert.acknowledged_by.username == "oncall"
    assert Notification.objects.count() == 0


def test_acknowledging_twice_says_so_and_an_outside_next_is_ignored(admin_client):
    alert = make_alert(make_rule(), make_server("web-1"))
    admin_client.post(f"/alerts/{alert.pk}/acknowledge")
    response = admin_client.post(
        f"/alerts/{alert.pk}/acknowledge", {"next": "https://example.com/"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/alerts/"
    assert "Not acknowledged" in html_of(response)
    assert admin_client.get(f"/alerts/{alert.pk}/acknowledge").status_code == 405


# Silences


def silence_post(**kw) -> dict:
    data = {"comment": "disk swap", "duration": "4h", "window_minutes": ""}
    data.update(kw)
    return data


def test_a_silence_for_four_hours_mutes_what_the_form_names(admin_client):
    server = make_server("db-1")
    rule = make_rule()
    before = timezone.now()
    response = admin_client.post(
        "/alerts/silences/new",
        silence_post(server=server.pk, rule=rule.pk, matchers="mountpoint=/data"),
    )
    assert response.status_code == 302 and response["Location"] == "/alerts/silences/"
    silence = Silence.objects.get()
    assert (silence.server, silence.rule, silence.matchers) == (server, rule, "mountpoint=/data")
    assert silence.created_by.username == "root" and silence.until_resolved is None
    assert timedelta(hours=4) == silence.ends_at - silence.starts_at
    assert before <= silence.starts_at <= timezone.now()


def test_mute_until_resolved_is_offered_from_an_alert_and_leaves_the_end_empty(admin_client):
    server = make_server("db-1")
    alert = make_alert(make_rule("Disk busy"), server, labels={"device": "sda"})
    html = html_of(admin_client.get(f"/alerts/silences/new?alert={alert.pk}"))
    assert "until this alert resolves" in html
    assert 'value="resolved" required id="id_duration_0" checked' in html
    assert f'name="until_resolved" value="{alert.pk}"' in html
    assert "device=sda" in html
    response = admin_client.post(
        "/alerts/silences/new",
        silence_post(
            duration="resolved", until_resolved=alert.pk, server=server.pk, rule=alert.rule_id
        ),
    )
    assert response.status_code == 302
    silence = Silence.objects.get()
    assert silence.until_resolved == alert and silence.ends_at is None
    assert silence.is_active(timezone.now())


def test_the_silence_form_without_an_alert_offers_no_mute_until_resolved(admin_client):
    html = html_of(admin_client.get("/alerts/silences/new"))
    assert "until this alert resolves" not in html
    response = admin_client.post(
        "/alerts/silences/new", silence_post(duration="resolved", rule=make_rule().pk)
    )
    assert "Select a valid choice" in html_of(response)
    assert Silence.objects.count() == 0


def test_a_weekly_silence_keeps_its_days_and_window(admin_client):
    rule = make_rule()
    ends = (timezone.now() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    admin_client.post(
        "/alerts/silences/new",
        silence_post(
            rule=rule.pk,
            duration="custom",
            ends_at=ends,
            weekdays=["5", "6"],
            window_start="22:00",
            window_minutes="600",
        ),
    )
    silence = Silence.objects.get()
    assert silence.weekdays == "5,6" and silence.window_minutes == 600
    assert silence.window_start.strftime("%H:%M") == "22:00"
    html = html_of(admin_client.get("/alerts/silences/"))
    assert "weekly: Sat, Sun from 22:00 for 600 min" in html


@pytest.mark.parametrize(
    "data, message",
    [
        ({"duration": "custom"}, "Set the time the silence ends."),
        (
            {"duration": "custom", "starts_at": "2030-01-02T10:00", "ends_at": "2030-01-01T10:00"},
            "The end must be after the start.",
        ),
        ({"weekdays": ["1"]}, "A weekly window needs a start time and a length."),
        ({"matchers": "bad matcher"}, "is not a label matcher"),
        ({"rule": None}, "Choose what to mute"),
        ({"comment": ""}, "This field is required."),
    ],
)
def test_silence_errors_are_shown_in_the_form(admin_client, data, message):
    post = silence_post(**{"rule": make_rule().pk, **data})
    post = {k: v for k, v in post.items() if v is not None}
    html = html_of(admin_client.post("/alerts/silences/new", post))
    assert message in html
    assert Silence.objects.count() == 0


def test_silences_are_listed_as_active_upcoming_and_expired_and_one_expires_now(admin_client):
    now = timezone.now()
    rule = make_rule()
    active = Silence.objects.create(
        comment="active one", rule=rule, ends_at=now + timedelta(hours=1)
    )
    upcoming = Silence.objects.create(
        comment="upcoming one",
        rule=rule,
        starts_at=now + timedelta(days=1),
        ends_at=now + timedelta(days=2),
    )
    Silence.objects.create(
        comment="expired one",
        rule=rule,
        starts_at=now - timedelta(days=2),
        ends_at=now - timedelta(days=1),
    )
    html = html_of(admin_client.get("/alerts/silences/"))
    assert html.index("active one") < html.index("upcoming one") < html.index("expired one")
    assert html.count("Expire now") == 2
    admin_client.post(f"/alerts/silences/{upcoming.pk}/expire")
    response = admin_client.post(f"/alerts/silences/{active.pk}/expire", follow=True)
    assert "Silence expired: active one." in html_of(response)
    for silence in (active, upcoming):
        silence.refresh_from_db()
        assert not silence.is_active(timezone.now() + timedelta(days=1, hours=1))
        assert silence.ends_at <= timezone.now()
    assert "Expire now" not in html_of(admin_client.get("/alerts/silences/"))


def test_silences_need_their_permissions(client):
    rule = make_rule()
    silence = Silence.objects.create(
        comment="s", rule=rule, ends_at=timezone.now() + timedelta(hours=1)
    )
    client.force_login(user_with("reader", "view_silence"))
    assert client.get("/alerts/silences/").status_code == 200
    assert "Expire now" not in client.get("/alerts/silences/").content.decode()
    assert client.get("/alerts/silences/new").status_code == 403
    assert client.post("/alerts/silences/new", silence_post(rule=rule.pk)).status_code == 403
    assert client.post(f"/alerts/silences/{silence.pk}/expire").status_code == 403
    assert Silence.objects.count() == 1


# Rules


def rule_post(**kw) -> dict:
    data = {
        "name": "Swap above 50%",
        "enabled": "on",
        "severity": "warning",
        "kind": "threshold",
        "metric": "swap_used_percent",
        "matchers": "",
        "aggregation": "avg",
        "window_seconds": "300",
        "scope": "all",
        "operator": ">",
        "threshold": "50",
        "recovery_threshold": "",
        "forecast_seconds": "86400",
        "no_data_seconds": "600",
        "for_seconds": "0",
        "for_evaluations": "1",
        "repeat_seconds": "14400",
        "description": "",
    }
    data.update(kw)
    return {k: v for k, v in data.items() if v is not None}


def test_the_rule_list_shows_scope_severity_firing_and_last_error(admin_client):
    server = make_server("db-1")
    rule = make_rule(
        "Disk on db-1", scope="server", server=server, severity="critical", last_error="boom"
    )
    make_alert(rule, server)
    html = html_of(admin_client.get("/alerts/rules/"))
    assert "Disk on db-1" in html and "server db-1" in html and "boom" in html
    assert "CPU above 90%" in html and "all servers" in html
    assert '<span class="count hot">1</span>' in html


def test_a_new_rule_is_saved_from_the_editor_grouped_what_where_when(admin_client):
    html = html_of(admin_client.get("/alerts/rules/new"))
    for legend in ("What", "Where", "When"):
        assert f"<legend>{legend}</legend>" in html
    response = admin_client.post("/alerts/rules/new", rule_post())
    rule = Rule.objects.get(name="Swap above 50%")
    assert response.status_code == 302 and response["Location"] == f"/alerts/rules/{rule.pk}/"
    assert (rule.metric, rule.threshold, rule.aggregation) == ("swap_used_percent", 50.0, "avg")


def test_an_existing_rule_is_edited(admin_client):
    rule = make_rule()
    admin_client.post(f"/alerts/rules/{rule.pk}/", rule_post(name="CPU high", threshold="95"))
    rule.refresh_from_db()
    assert rule.threshold == 95.0 and rule.metric == "swap_used_percent"


@pytest.mark.parametrize(
    "data, field_message",
    [
        ({"threshold": ""}, "This kind of rule needs a threshold."),
        ({"scope": "server"}, "Choose the server this rule applies to."),
        ({"matchers": "device=~(unclosed"}, "bad regular expression"),
        ({"aggregation": "p101"}, "use last, avg, min, max or a percentile"),
        ({"recovery_threshold": "60"}, "Must be at or below the threshold."),
        ({"name": "CPU above 90%"}, "Rule with this Name already exists."),
        ({"kind": "forecast", "window_seconds": "30"}, "A trend needs a window of at least 60 s."),
    ],
)
def test_rule_form_errors_are_shown_next_to_their_fields(admin_client, data, field_message):
    count = Rule.objects.count()
    html = html_of(admin_client.post("/alerts/rules/new", rule_post(**data)))
    assert field_message in html and "has-error" in html
    assert Rule.objects.count() == count


def test_a_rule_is_disabled_and_enabled_from_the_list(admin_client):
    rule = make_rule()
    admin_client.post(f"/alerts/rules/{rule.pk}/enabled", {"enabled": "0"})
    rule.refresh_from_db()
    assert not rule.enabled
    html = html_of(admin_client.get("/alerts/rules/"))
    assert f'data-rule="{rule.pk}"' in html and 'class="disabled"' in html
    admin_client.post(f"/alerts/rules/{rule.pk}/enabled", {"enabled": "1"})
    rule.refresh_from_db()
    assert rule.enabled


def test_a_user_who_may_only_view_rules_cannot_save_them(client):
    client.force_login(user_with("reader", "view_rule"))
    rule = make_rule()
    html = html_of(client.get(f"/alerts/rules/{rule.pk}/"))
    assert "Save rule" not in html and "Backtest" in html
    assert client.post(f"/alerts/rules/{rule.pk}/", rule_post(name="x")).status_code == 403
    assert client.post("/alerts/rules/new", rule_post()).status_code == 403
    assert client.post(f"/alerts/rules/{rule.pk}/enabled", {"enabled": "0"}).status_code == 403
    rule.refresh_from_db()
    assert rule.name == "CPU high" and rule.enabled


def test_the_backtest_answers_json_for_an_unsaved_rule(admin_client):
    server = make_server("db-1")
    now = int(timezone.now().timestamp()) // 60 * 60
    # Two hours of swap use at 20 %, with half an hour at 70 % in the middle.
    points = [(now - 7200 + i * 60, 70.0 if 60 <= i < 90 else 20.0) for i in range(120)]
    store(server, "swap_used_percent", points)
    rules = Rule.objects.count()
    response = admin_client.post("/alerts/rules/backtest", rule_post(name=""))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["fired"] >= 1 and body["series"] == 1
    assert {e["server"] for e in body["episodes"]} == {"db-1"}
    assert body["charts"] and body["charts"][0]["server"] == "db-1"
    assert body["summary"].startswith("Over the last 7 days this rule would have fired")
    assert body["rule"]["threshold"] == 50.0
    assert Rule.objects.count() == rules


def test_the_backtest_answers_field_errors_of_an_invalid_rule(admin_client):
    response = admin_client.post("/alerts/rules/backtest", rule_post(threshold="", metric=""))
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "threshold" in errors and "metric" in errors
    assert admin_client.get("/alerts/rules/backtest").status_code == 405


# The server page


def test_the_server_page_shows_its_active_alerts(admin_client):
    server = make_server("web-1")
    other = make_server("web-2")
    make_alert(make_rule("Firing rule"), server)
    make_alert(make_rule("Pending rule"), server, PENDING)
    make_alert(make_rule("Resolved rule"), server, OK)
    make_alert(make_rule("Other server's rule"), other)
    html = html_of(admin_client.get(f"/servers/{server.pk}/"))
    assert "Active alerts" in html
    assert html.index("Firing rule") < html.index("Pending rule")
    assert "Resolved rule" not in html and "Other server" not in html
    assert "Active alerts" not in html_of(admin_client.get(f"/servers/{make_server('quiet').pk}/"))


# Escaping


def test_rule_server_label_and_silence_texts_are_escaped_on_every_alert_page(admin_client):
    server = make_server(EVIL, host_name="evil", location=Location.objects.create(name=EVIL))
    rule = make_rule(EVIL, description=EVIL, scope="server", server=server, last_error=EVIL)
    alert = make_alert(rule, server, labels={"mountpoint": EVIL}, ack_comment="")
    make_alert(make_rule("second"), server, labels={"x": EVIL}, silenced=True)
    Silence.objects.create(
        comment=EVIL,
        server=server,
        matchers=f"x={EVIL}",
        ends_at=timezone.now() + timedelta(hours=1),
    )
    AlertEvent.objects.create(
        alert=alert, rule=rule, server=server, kind="firing", at=timezone.now(), text=EVIL
    )
    admin_client.post(f"/alerts/{alert.pk}/acknowledge", {"comment": EVIL})
    urls = [
        "/alerts/",
        "/alerts/?tab=acknowledged",
        "/alerts/?tab=silenced",
        "/alerts/?tab=history",
        "/alerts/silences/",
        f"/alerts/silences/new?alert={alert.pk}",
        "/alerts/rules/",
        f"/alerts/rules/{rule.pk}/",
        f"/servers/{server.pk}/",
    ]
    for url in urls:
        html = html_of(admin_client.get(url))
        assert EVIL not in html, url
        assert ESCAPED in html, url
