"""From a firing rule to every channel: each hears the firing once, the
acknowledgement reaches PagerDuty and Opsgenie, and the resolution reaches
everyone once. Real receivers on 127.0.0.1: an SMTP server (aiosmtpd) and
each provider's HTTP API, checking every payload against its documentation.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller

from vigil.alerts import dispatch
from vigil.alerts.models import Alert, Rule
from vigil.alerts.tasks import evaluate_alerts
from vigil.notify import delivery
from vigil.notify.models import Channel, Delivery, Route
from vigil.notify.tests.samples import channel_settings
from vigil.testing import free_port, make_server, store

pytestmark = pytest.mark.django_db

T0 = 1_790_000_040


class Mailbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(message_from_bytes(envelope.content, policy=default_policy))
        return "250 2.0.0 Ok: queued"


@pytest.fixture
def mailbox(settings):
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_URL = f"smtp://127.0.0.1:{port}?from=vigil@example.com"
    yield box
    controller.stop()


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, tz=UTC)


def test_a_firing_rule_reaches_every_channel_once_and_so_does_its_resolution(
    mailbox, pagerduty, opsgenie, slack, twilio, webhook, settings
):
    settings.ALERT_GROUP_WAIT_SECONDS = 0
    receivers = {
        "pagerduty": pagerduty,
        "opsgenie": opsgenie,
        "slack": slack,
        "sms": twilio,
        "webhook": webhook,
    }
    route = Route.objects.create(name="everyone", is_default=True)
    for kind, receiver in receivers.items():
        config, secrets = channel_settings(kind, receiver.url)
        route.channels.add(
            Channel.objects.create(name=kind, kind=kind, config=config, secrets=secrets)
        )
    route.channels.add(
        Channel.objects.create(name="mail", kind="email", config={"to": ["ops@example.com"]})
    )
    Rule.objects.all().delete()
    Rule.objects.create(
        name="Disk almost full",
        metric="filesystem_used_percent",
        threshold=90,
        severity="critical",
        description="{label:mountpoint} on {server} is {value}% full",
    )
    server = make_server("<b>db-1</b>")

    # Fires, is delivered, and a second tick sends nothing more.
    store(server, "filesystem_used_percent", [(T0, 97.5)], {"mountpoint": "/var"})
    evaluate_alerts(T0)
    assert delivery.deliver_due(at(1))["sent"] == 6
    assert delivery.deliver_due(at(2)).get("sent", 0) == 0

    # Acknowledged: PagerDuty and Opsgenie acknowledge their incident.
    alert = Alert.objects.get()
    assert dispatch.acknowledge(alert, None, "replacing the disk", at(60))
    delivery.deliver_due(at(61))

    # Resolved.
    store(server, "filesystem_used_percent", [(T0 + 120, 40.0)], {"mountpoint": "/var"})
    evaluate_alerts(T0 + 120)
    delivery.deliver_due(at(121))
    delivery.deliver_due(at(200))

    for kind, receiver in receivers.items():
        assert receiver.problems() == [], kind
    pd = [(d["event_action"], d["dedup_key"]) for d in pagerduty.docs()]
    key = pd[0][1]
    assert pd == [("trigger", key), ("acknowledge", key), ("resolve", key)]
    assert pagerduty.docs()[0]["payload"]["severity"] == "critical"
    og = [(r.method, r.path.split("?")[0]) for r in opsgenie.requests]
    assert og == [
        ("POST", "/v2/alerts"),
        ("POST", f"/v2/alerts/{key}/acknowledge"),
        ("POST", f"/v2/alerts/{key}/close"),
    ]
    assert opsgenie.docs()[0]["alias"] == key
    hooks = [r.header("X-Vigil-Event") for r in webhook.requests]
    assert hooks == ["firing", "acknowledged", "resolved"]
    assert len({r.header("X-Vigil-Delivery") for r in webhook.requests}) == 3
    assert len(slack.requests) == 3
    assert "&lt;b&gt;db-1&lt;/b&gt;" in slack.requests[0].body.decode()
    assert len(twilio.requests) == 3 * 2  # three messages to two numbers
    subjects = [m["Subject"] for m in mailbox.messages]
    assert len(subjects) == 3 and "Resolved" in subjects[2]
    html = mailbox.messages[0].get_body(("html",)).get_content()
    assert "&lt;b&gt;db-1&lt;/b&gt;" in html and "<b>db-1</b>" not in html
    assert Delivery.objects.exclude(status="sent").count() == 0
    assert Delivery.objects.count() == 3 * 6


def test_an_sms_retry_goes_only_to_the_numbers_not_yet_reached(twilio):
    from vigil.alerts.models import Notification
    from vigil.notify.tests.samples import RECIPIENTS

    config, secrets = channel_settings("sms", twilio.url)
    channel = Channel.objects.create(name="sms", kind="sms", config=config, secrets=secrets)
    rule = Rule.objects.create(name="cpu", metric="cpu_usage_percent", threshold=90)
    n = Notification.objects.create(kind="firing", rule=rule, severity="critical", title="cpu")
    d = Delivery.objects.create(notification=n, channel=channel, next_attempt_at=at(0))
    twilio.then(201)
    twilio.then(500)
    assert delivery.deliver(d.pk, at(0)) == "retry"
    d.refresh_from_db()
    assert d.progress == [RECIPIENTS[0]]
    assert delivery.deliver(d.pk, d.next_attempt_at) == "sent"
    to = [r.doc["To"] for r in twilio.requests]
    assert to == [RECIPIENTS[0], RECIPIENTS[1], RECIPIENTS[1]]
