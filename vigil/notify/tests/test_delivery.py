"""Routing, claiming, retries, fallback and escalation of deliveries.

A scripted channel stands in for the receivers here (the channels' own tests
talk to real servers on 127.0.0.1): it answers what each test tells it to,
so the delivery logic is tested on its own, on both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vigil.alerts.models import Alert, Notification, Rule
from vigil.alerts.tasks import evaluate_alerts
from vigil.notify import delivery
from vigil.notify.models import Attempt, Channel, Delivery, Route
from vigil.notify.transports import REGISTRY, Sent, Transport, TransportError
from vigil.servers.models import Location, Tag
from vigil.testing import make_server, store

pytestmark = pytest.mark.django_db

T0 = 1_790_000_040


class Scripted(Transport):
    """Answers from a script: "ok", "500", "429:30" (Retry-After 30), "400"."""

    kind = "scripted"
    script: list[str] = []
    seen: list = []

    def notify(self, message):
        Scripted.seen.append((self.config.get("name"), message))
        answer = Scripted.script.pop(0) if Scripted.script else "ok"
        if answer == "ok":
            return Sent(202, "accepted")
        code, _, after = answer.partition(":")
        raise TransportError(
            f"the receiver answered {code}",
            permanent=code.startswith("4") and code != "429",
            retry_after=float(after) if after else None,
            status=int(code),
            answer="no",
        )


@pytest.fixture(autouse=True)
def scripted(settings):
    REGISTRY["scripted"] = Scripted
    Scripted.script, Scripted.seen = [], []
    settings.NOTIFY_MAX_ATTEMPTS = 3
    settings.NOTIFY_RETRY_BASE_SECONDS = 10
    settings.ALERT_GROUP_WAIT_SECONDS = 0
    Rule.objects.all().delete()
    yield
    REGISTRY.pop("scripted", None)


def channel(name: str, **kw) -> Channel:
    return Channel.objects.create(name=name, kind="scripted", config={"name": name}, **kw)


def route(name: str, channels, **kw) -> Route:
    r = Route.objects.create(name=name, **kw)
    r.channels.set(channels)
    return r


def fire(server_name: str = "web-1", rule_name: str = "cpu", severity: str = "warning", **server):
    """A rule of its own firing on a new server, and its notification."""
    s = make_server(server_name, **server)
    rule = Rule.objects.create(
        name=rule_name,
        metric="cpu_usage_percent",
        threshold=90,
        severity=severity,
        scope="server",
        server=s,
    )
    store(s, "cpu_usage_percent", [(T0, 95)])
    Rule.objects.update(last_evaluated=None)
    evaluate_alerts(T0)
    return Notification.objects.filter(rule=rule).latest("id")


def at(seconds: float):
    return datetime.fromtimestamp(T0 + seconds, tz=UTC)


def test_a_notification_goes_to_the_channels_of_every_matching_route_once():
    pager, chat, mail = channel("pager"), channel("chat"), channel("mail")
    route("critical", [pager, chat], severity="critical")
    route("everything critical again", [chat], severity="critical")
    route("default", [mail], is_default=True)
    n = fire(severity="critical")
    out = delivery.deliver_due(at(1))
    assert out["routed"] == 2 and out["sent"] == 2
    assert sorted(name for name, _ in Scripted.seen) == ["chat", "pager"]
    n.refresh_from_db()
    assert n.routed_at is not None and n.delivered_at is not None
    # Nothing more to do on the next tick.
    assert delivery.deliver_due(at(2)) == {"routed": 0, "reclaimed": 0}


def test_routes_match_on_rule_location_and_tag_and_the_default_takes_the_rest():
    paris = Location.objects.create(name="paris")
    db = Tag.objects.create(name="db")
    by_place, by_tag, fallback_route = channel("paris"), channel("db"), channel("default")
    route("paris", [by_place], location=paris)
    route("db", [by_tag], tag=db)
    route("default", [fallback_route], is_default=True)
    fire("p1", rule_name="one", location=paris)
    d1 = fire("d1", rule_name="two").alerts.get().server
    d1.tags.add(db)
    Notification.objects.filter(rule__name="two").update(routed_at=None)
    fire("other", rule_name="three")
    delivery.deliver_due(at(100))
    got = sorted((name, m.rule) for name, m in Scripted.seen)
    assert ("paris", "one") in got and ("db", "two") in got and ("default", "three") in got
    assert ("default", "one") not in got and ("default", "two") not in got


def test_a_server_error_is_retried_with_backoff_and_the_same_key():
    route("default", [channel("pager")], is_default=True)
    fire()
    Scripted.script = ["500", "500", "ok"]
    assert delivery.deliver_due(at(0))["retry"] == 1
    d = Delivery.objects.get()
    first_wait = (d.next_attempt_at - at(0)).total_seconds()
    assert 5 <= first_wait <= 10
    assert delivery.deliver_due(at(1)).get("retry", 0) == 0  # not due yet
    delivery.deliver_due(d.next_attempt_at)
    d.refresh_from_db()
    second_wait = (d.next_attempt_at - d.log.last().at).total_seconds()
    assert 10 <= second_wait <= 20
    delivery.deliver_due(d.next_attempt_at)
    d.refresh_from_db()
    assert d.status == "sent" and d.attempts == 3
    assert [a.outcome for a in d.log.all()] == ["retry", "retry", "sent"]
    assert [a.status_code for a in d.log.all()] == [500, 500, 202]
    keys = {m.delivery_key for _, m in Scripted.seen}
    assert keys == {str(d.key)}


def test_too_many_requests_waits_as_long_as_the_receiver_asks():
    route("default", [channel("pager")], is_default=True)
    fire()
    Scripted.script = ["429:120"]
    delivery.deliver_due(at(0))
    d = Delivery.objects.get()
    assert d.status == "retry" and d.next_attempt_at == at(120)


def test_a_client_error_fails_at_once_and_falls_back():
    pager = channel("pager")
    mail = channel("mail", is_fallback=True)
    route("default", [pager], is_default=True)
    n = fire()
    Scripted.script = ["400"]
    out = delivery.deliver_due(at(0))
    assert out["failed"] == 1
    failed = Delivery.objects.get(channel=pager)
    assert failed.status == "failed" and failed.attempts == 1
    pager.refresh_from_db()
    assert "400" in pager.last_error and pager.last_error_at == at(0)
    # The fallback takes it on the next tick.
    delivery.deliver_due(at(1))
    backup = Delivery.objects.get(channel=mail)
    assert backup.purpose == "fallback" and backup.status == "sent"
    n.refresh_from_db()
    assert n.delivered_at == at(1)


def test_after_the_last_attempt_a_delivery_fails_for_good():
    route("default", [channel("pager")], is_default=True)
    fire()
    Scripted.script = ["500"] * 5
    now = at(0)
    for _ in range(5):
        delivery.deliver_due(now)
        now += timedelta(hours=2)
    d = Delivery.objects.get()
    assert d.status == "failed" and d.attempts == 3
    assert Attempt.objects.filter(delivery=d).count() == 3


def test_a_delivery_is_claimed_once():
    route("default", [channel("pager")], is_default=True)
    fire()
    delivery.route_new(at(0))
    d = Delivery.objects.get()
    assert delivery.deliver(d.pk, at(0)) == "sent"
    assert delivery.deliver(d.pk, at(0)) == "not claimed"
    assert len(Scripted.seen) == 1


def test_a_worker_that_died_mid_send_has_its_claim_taken_back():
    route("default", [channel("pager")], is_default=True)
    fire()
    delivery.route_new(at(0))
    Delivery.objects.update(status="sending", claimed_at=at(0), attempts=1)
    assert delivery.deliver_due(at(60)).get("reclaimed") == 0
    out = delivery.deliver_due(at(400))
    assert out["reclaimed"] == 1 and out["sent"] == 1


def test_an_unacknowledged_critical_alert_escalates_and_an_acknowledged_one_does_not():
    from vigil.alerts import dispatch

    pager, boss = channel("pager"), channel("boss")
    r = route("critical", [pager], severity="critical", escalate_after_minutes=15)
    r.escalate_to.set([boss])
    fire("a", rule_name="a", severity="critical")
    delivery.deliver_due(at(0))
    escalation = Delivery.objects.get(channel=boss)
    assert escalation.status == "scheduled" and escalation.next_attempt_at == at(15 * 60)
    delivery.deliver_due(at(15 * 60))
    escalation.refresh_from_db()
    assert escalation.status == "sent"
    assert [m.title.startswith("Escalated") for name, m in Scripted.seen if name == "boss"] == [
        True
    ]

    fire("b", rule_name="b", severity="critical")
    delivery.deliver_due(at(60))
    alert = Alert.objects.get(rule__name="b")
    dispatch.acknowledge(alert, None, "on it", at(5 * 60))
    delivery.deliver_due(at(40 * 60))
    late = Delivery.objects.get(channel=boss, notification__rule__name="b", purpose="escalation")
    assert late.status == "cancelled"


def test_a_test_notification_reports_what_the_receiver_said():
    c = channel("pager")
    Scripted.script = ["500"]
    outcome, attempt = delivery.send_test(c)
    assert outcome == "retry" and attempt.status_code == 500
    assert Delivery.objects.get().status == "failed"
    outcome, attempt = delivery.send_test(c)
    assert outcome == "sent" and attempt.answer == "accepted"
    assert Scripted.seen[-1][1].is_test
