"""Noise control: silences, acknowledgement, flapping, dependencies,
grouping and repeats, as the notification queue shows them."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from django.contrib.auth.models import User

from vigil.alerts import dispatch
from vigil.alerts.engine import at
from vigil.alerts.models import Alert, AlertEvent, Notification, Rule, Silence
from vigil.alerts.tasks import evaluate_alerts
from vigil.servers.models import Location, Server, Tag
from vigil.testing import make_server, store

pytestmark = pytest.mark.django_db

T0 = 1_790_000_040  # a Monday, 14:14 UTC


@pytest.fixture(autouse=True)
def quick_grouping(settings):
    Rule.objects.all().delete()
    settings.ALERT_GROUP_WAIT_SECONDS = 30
    settings.TIME_ZONE = "UTC"


def cpu_rule(**kw) -> Rule:
    fields = {"name": "cpu", "metric": "cpu_usage_percent", "operator": ">", "threshold": 90}
    fields.update(kw)
    return Rule.objects.create(**fields)


def sent(**filters) -> list[tuple[str, list[str]]]:
    """(kind, servers) of each queued notification, oldest first."""
    out = []
    for n in Notification.objects.filter(**filters).order_by("created", "id"):
        out.append((n.kind, sorted(i["server"] or i["location"] for i in n.items)))
    return out


def write_up(server, t, value):
    """An `up` sample as update_up writes it: it does not mark the server seen."""
    from django.db import transaction

    from vigil.ingest import writer
    from vigil.ingest.parsers.base import SeriesPoints

    with transaction.atomic():
        writer.write_now([(server.pk, SeriesPoints(None, "up", (), [t], [value]))], mark_seen=False)


def cpu(servers, t, value):
    for s in servers:
        store(s, "cpu_usage_percent", [(t, value)])


def test_servers_that_fire_together_arrive_as_one_notification():
    cpu_rule()
    a, b, c = (make_server(n) for n in "abc")
    cpu([a], T0, 95)
    evaluate_alerts(T0)
    cpu([a, b], T0 + 20, 95)
    evaluate_alerts(T0 + 20)  # b fires, the group waits for 30 s after a
    cpu([a, b, c], T0 + 40, 95)
    evaluate_alerts(T0 + 40)
    assert sent() == [("firing", ["a", "b", "c"])]
    cpu([a, b, c], T0 + 80, 10)
    evaluate_alerts(T0 + 80)
    evaluate_alerts(T0 + 120)
    assert sent() == [("firing", ["a", "b", "c"]), ("resolved", ["a", "b", "c"])]


def test_a_firing_alert_is_repeated_until_acknowledged():
    cpu_rule(repeat_seconds=600)
    a = make_server("a")
    for k in range(0, 50):
        t = T0 + k * 60
        cpu([a], t, 95)
        evaluate_alerts(t)
        if k == 25:
            alert = Alert.objects.get()
            user = User.objects.create_user("oncall")
            assert dispatch.acknowledge(alert, user, "looking", at(t))
            assert not dispatch.acknowledge(alert, user, "again", at(t))
    kinds = [k for k, _ in sent()]
    # Fired at +0 (told at +60), reminded every 10 min, acknowledged at +25 min.
    assert kinds == ["firing", "repeat", "repeat", "acknowledged"]
    ack = Notification.objects.get(kind="acknowledged")
    assert ack.items[0]["acknowledged_by"] == "oncall" and ack.items[0]["comment"] == "looking"
    # Resolving clears the acknowledgement, and the next firing pages again.
    cpu([a], T0 + 3000, 10)
    evaluate_alerts(T0 + 3000)
    evaluate_alerts(T0 + 3040)
    cpu([a], T0 + 3100, 95)
    evaluate_alerts(T0 + 3100)
    evaluate_alerts(T0 + 3140)
    assert [k for k, _ in sent()][-2:] == ["resolved", "firing"]
    assert Alert.objects.get().acknowledged_at is None
    first, second = Notification.objects.filter(kind="firing").order_by("id")
    assert first.items[0]["key"] != second.items[0]["key"]


def test_an_alert_that_fires_again_before_its_resolution_went_out_stays_one_incident():
    cpu_rule()
    a = make_server("a")
    cpu([a], T0, 95)
    evaluate_alerts(T0)
    evaluate_alerts(T0 + 40)
    cpu([a], T0 + 60, 10)
    evaluate_alerts(T0 + 60)
    cpu([a], T0 + 80, 95)
    evaluate_alerts(T0 + 80)
    evaluate_alerts(T0 + 200)
    assert sent() == [("firing", ["a"])]
    assert Alert.objects.get().fired_at == at(T0)


def test_a_silenced_alert_changes_state_but_tells_no_one_until_the_silence_ends():
    cpu_rule()
    a, b = make_server("a"), make_server("b")
    Silence.objects.create(server=a, starts_at=at(T0 - 10), ends_at=at(T0 + 300))
    cpu([a, b], T0, 95)
    evaluate_alerts(T0)
    evaluate_alerts(T0 + 60)
    assert sent() == [("firing", ["b"])]
    assert Alert.objects.get(server=a).silenced and Alert.objects.get(server=a).is_firing
    # Still firing when the silence expires: now someone is told.
    cpu([a, b], T0 + 320, 95)
    evaluate_alerts(T0 + 320)
    assert sent() == [("firing", ["b"]), ("firing", ["a"])]


def test_a_silence_that_ends_before_resolution_keeps_quiet_about_an_untold_alert():
    cpu_rule()
    a = make_server("a")
    Silence.objects.create(server=a, starts_at=at(T0 - 10), ends_at=at(T0 + 300))
    cpu([a], T0, 95)
    evaluate_alerts(T0)
    cpu([a], T0 + 60, 10)
    evaluate_alerts(T0 + 60)
    evaluate_alerts(T0 + 400)
    assert sent() == []
    assert list(AlertEvent.objects.values_list("kind", flat=True).order_by("at")) == [
        "firing",
        "resolved",
    ]


@pytest.mark.parametrize(
    "matcher, muted",
    [
        ({"location": "paris"}, ["a"]),
        ({"tag": "db"}, ["b"]),
        ({"rule": "cpu"}, ["a", "b", "c"]),
        ({"rule": "other"}, []),
        ({"matchers": "core=~0|1"}, ["a", "b"]),
        ({"matchers": "core!=0"}, ["b", "c"]),
    ],
)
def test_silences_match_by_location_tag_rule_and_labels(matcher, muted):
    paris = Location.objects.create(name="paris")
    db = Tag.objects.create(name="db")
    rule = cpu_rule()
    other = Rule.objects.create(name="other", metric="x", threshold=1)
    a, b, c = make_server("a", location=paris), make_server("b"), make_server("c")
    b.tags.add(db)
    for core, s in enumerate((a, b, c)):
        store(s, "cpu_usage_percent", [(T0, 95)], {"core": str(core)})
    fields = dict(matcher)
    if "location" in fields:
        fields["location"] = paris
    if "tag" in fields:
        fields["tag"] = db
    if "rule" in fields:
        fields["rule"] = rule if fields["rule"] == "cpu" else other
    Silence.objects.create(starts_at=at(T0 - 10), ends_at=at(T0 + 3600), **fields)
    evaluate_alerts(T0)
    evaluate_alerts(T0 + 60)
    told = [s for _, servers in sent() for s in servers]
    assert sorted(told) == sorted({"a", "b", "c"} - set(muted))


def test_a_weekly_maintenance_window_mutes_only_inside_the_window():
    s = Silence(
        starts_at=at(T0 - 86400 * 30),
        ends_at=at(T0 + 86400 * 30),
        weekdays="5",  # Saturdays
        window_start=time(22, 0),
        window_minutes=6 * 60,  # until Sunday 04:00
    )
    s.full_clean()
    saturday = at(T0) + timedelta(days=5)  # Saturday 14:14
    assert not s.is_active(saturday)
    assert s.is_active(saturday.replace(hour=23))
    assert s.is_active(saturday.replace(hour=3) + timedelta(days=1))
    assert not s.is_active(saturday.replace(hour=5) + timedelta(days=1))
    assert not s.is_active(saturday.replace(hour=23) + timedelta(days=60))  # past ends_at


def test_mute_until_resolved_expires_when_the_alert_resolves():
    cpu_rule()
    a = make_server("a")
    cpu([a], T0, 95)
    evaluate_alerts(T0)
    evaluate_alerts(T0 + 60)
    alert = Alert.objects.get()
    silence = Silence.objects.create(until_resolved=alert, starts_at=at(T0 + 61))
    silence.full_clean()
    cpu([a], T0 + 90, 10)
    evaluate_alerts(T0 + 90)
    silence.refresh_from_db()
    assert silence.ends_at == at(T0 + 90)
    # The resolution of an alert people were told about still goes out.
    evaluate_alerts(T0 + 130)
    assert sent() == [("firing", ["a"]), ("resolved", ["a"])]
    # A new firing of the same alert is not muted.
    cpu([a], T0 + 200, 95)
    evaluate_alerts(T0 + 200)
    evaluate_alerts(T0 + 240)
    assert sent()[-1] == ("firing", ["a"])


def test_a_flapping_alert_notifies_once_until_it_settles():
    cpu_rule()
    a = make_server("a")
    values = [95, 10] * 10 + [95] * 25
    for k, v in enumerate(values):
        cpu([a], T0 + k * 30, v)
        evaluate_alerts(T0 + k * 30)
    # The first firing resolved within the group wait: no one was paged for
    # it. Then one "flapping", and "firing" once it settled while firing.
    assert [k for k, _ in sent()] == ["flapping", "firing"]
    alert = Alert.objects.get()
    assert not alert.flapping and alert.is_firing
    kinds = list(AlertEvent.objects.order_by("at", "id").values_list("kind", flat=True))
    assert kinds.count("flapping") == 1 and kinds[-1] == "settled"


def test_a_down_server_suppresses_its_other_alerts():
    cpu_rule()
    a = make_server("a")
    cpu([a], T0, 95)
    Server.objects.filter(pk=a.pk).update(status=Server.Status.DOWN)
    evaluate_alerts(T0)
    evaluate_alerts(T0 + 60)
    assert sent() == []
    assert Alert.objects.get().suppressed == "server down"
    Server.objects.filter(pk=a.pk).update(status=Server.Status.UP)
    evaluate_alerts(T0 + 120)
    assert sent() == [("firing", ["a"])]


def test_a_location_outage_is_one_page_instead_of_one_per_server(settings):
    settings.ALERT_LOCATION_OUTAGE_PERCENT = 50
    down_rule = Rule.objects.create(name="down", kind="host_down", metric="up", for_seconds=60)
    paris, lyon = Location.objects.create(name="paris"), Location.objects.create(name="lyon")
    in_paris = [make_server(f"p{k}", location=paris) for k in range(4)]
    in_lyon = [make_server(f"l{k}", location=lyon) for k in range(4)]
    for s in in_paris + in_lyon:
        write_up(s, T0, 1)
    Server.objects.filter(pk__in=[s.pk for s in in_paris + in_lyon]).update(status="up")
    # Three of Paris's four servers and one in Lyon go down.
    gone = in_paris[:3] + in_lyon[:1]
    Server.objects.filter(pk__in=[s.pk for s in gone]).update(status="down")
    for k in range(1, 6):
        t = T0 + k * 30
        for s in in_paris + in_lyon:
            write_up(s, t, 0 if s in gone else 1)
        evaluate_alerts(t)
    assert sent() == [("firing", ["l0"]), ("firing", ["paris"])]
    (page,) = Notification.objects.filter(location=paris)
    assert page.items[0]["labels"] == {"down": "3 of 4"}
    assert all(
        a.suppressed == "location outage" for a in Alert.objects.filter(server__in=in_paris[:3])
    )
    # Back up: one resolution for the location, one for Lyon's server.
    Server.objects.update(status="up")
    for k in range(6, 9):
        t = T0 + k * 30
        for s in in_paris + in_lyon:
            write_up(s, t, 1)
        evaluate_alerts(t)
    assert sorted(sent(kind="resolved")) == [("resolved", ["l0"]), ("resolved", ["paris"])]
    assert Alert.objects.filter(rule=down_rule, state=Alert.State.FIRING).count() == 0


def test_a_retired_servers_alerts_close_and_it_never_alerts_again():
    cpu_rule()
    a = make_server("a")
    cpu([a], T0, 95)
    evaluate_alerts(T0)
    evaluate_alerts(T0 + 60)
    Server.objects.filter(pk=a.pk).update(status=Server.Status.RETIRED)
    cpu([a], T0 + 90, 99)
    evaluate_alerts(T0 + 90)
    evaluate_alerts(T0 + 130)
    assert sent() == [("firing", ["a"]), ("resolved", ["a"])]
    assert Alert.objects.get().state == Alert.State.OK


def test_a_new_server_is_down_only_after_its_grace_period(settings):
    from vigil.servers.tasks import update_up

    settings.SERVER_NEW_GRACE_SECONDS = 3600
    s = make_server("fresh")
    Server.objects.filter(pk=s.pk).update(created=at(T0))
    update_up(T0 + 3000)
    assert Server.objects.get(pk=s.pk).status == Server.Status.NEW
    update_up(T0 + 3700)
    assert Server.objects.get(pk=s.pk).status == Server.Status.DOWN


def test_disabling_a_rule_resolves_its_alerts():
    rule = cpu_rule()
    a = make_server("a")
    cpu([a], T0, 95)
    evaluate_alerts(T0)
    evaluate_alerts(T0 + 60)
    Rule.objects.filter(pk=rule.pk).update(enabled=False)
    evaluate_alerts(T0 + 90)
    evaluate_alerts(T0 + 130)
    assert sent() == [("firing", ["a"]), ("resolved", ["a"])]
    assert AlertEvent.objects.filter(kind="resolved").get().text == "the rule was disabled"


def test_a_silence_shows_on_its_alerts_as_soon_as_it_is_made_or_expired():
    from vigil.alerts.overview import expire

    cpu_rule()
    a = make_server("a")
    cpu([a], T0, 95)
    evaluate_alerts(T0)
    silence = Silence.objects.create(server=a, starts_at=at(T0), ends_at=at(T0 + 3600))
    dispatch.refresh_marks(at(T0 + 5))
    assert Alert.objects.get().silenced
    assert expire(silence, at(T0 + 10))
    assert not Alert.objects.get().silenced
