"""Each HTTP channel driven through vigil.notify.delivery.deliver, against its
receiver on 127.0.0.1: the delivery log records what the provider answered,
and the answer decides the retry (Retry-After, backoff, or none)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vigil.alerts.models import Notification, Rule
from vigil.notify import delivery
from vigil.notify.models import Attempt, Channel, Delivery
from vigil.notify.tests.samples import RECEIVER_OF, channel_settings, item

pytestmark = pytest.mark.django_db

KINDS = list(RECEIVER_OF)
NOW = datetime(2026, 9, 21, 10, 0, tzinfo=UTC)
# Requests one attempt makes: the SMS channel sends to two recipients.
REQUESTS = {"sms": 2}
SUCCESS = {
    "pagerduty": (202, '"message":"Event processed"'),
    "opsgenie": (202, '"result":"Request will be processed"'),
    "slack": (200, "ok"),
    "sms": (201, '"sid":"SM'),
    "webhook": (200, '"received"'),
}


@pytest.fixture(autouse=True)
def retries(settings) -> None:
    settings.NOTIFY_MAX_ATTEMPTS = 3
    settings.NOTIFY_RETRY_BASE_SECONDS = 10
    settings.BASE_URL = "https://vigil.example.com"


@pytest.fixture
def receiver_of(request):
    return lambda kind: request.getfixturevalue(RECEIVER_OF[kind])


def queued(kind: str, base: str, notification_kind: str = "firing") -> Delivery:
    """A notification of one alert waiting for a channel of `kind` at `base`."""
    config, secrets = channel_settings(kind, base)
    channel = Channel.objects.create(
        name=f"{kind} on call", kind=kind, config=config, secrets=secrets
    )
    rule = Rule.objects.create(
        name="disk full", metric="disk_used_percent", threshold=90, severity="critical"
    )
    notification = Notification.objects.create(
        kind=notification_kind,
        rule=rule,
        severity="critical",
        title="CRITICAL: disk full on web-1",
        items=[item(1)],
        created=NOW,
    )
    return Delivery.objects.create(notification=notification, channel=channel, next_attempt_at=NOW)


def attempts(d: Delivery) -> list[Attempt]:
    return list(Attempt.objects.filter(delivery=d).order_by("number"))


@pytest.mark.parametrize("kind", KINDS)
def test_a_delivery_is_sent_and_its_attempt_records_the_providers_answer(kind, receiver_of):
    receiver = receiver_of(kind)
    d = queued(kind, receiver.url)
    assert delivery.deliver(d.pk, NOW) == "sent"
    (attempt,) = attempts(d)
    status, marker = SUCCESS[kind]
    assert (attempt.number, attempt.outcome, attempt.status_code) == (1, "sent", status)
    assert marker in attempt.answer
    assert attempt.error == ""
    d.refresh_from_db()
    assert d.status == Delivery.Status.SENT and d.sent_at == NOW
    assert Channel.objects.get(pk=d.channel_id).last_success_at == NOW
    assert receiver.problems() == []


def test_the_webhook_delivery_id_is_the_delivery_key_and_links_to_vigil(webhook):
    d = queued("webhook", webhook.url)
    delivery.deliver(d.pk, NOW)
    (request,) = webhook.requests
    assert request.header("x-vigil-delivery") == str(d.key)
    assert request.doc["link"] == "https://vigil.example.com/alerts/"
    assert request.doc["rule"] == "disk full"


@pytest.mark.parametrize(
    "notification_kind, action", [("firing", "trigger"), ("acknowledged", "acknowledge")]
)
def test_pagerduty_hears_the_alerts_key_from_a_delivery(notification_kind, action, pagerduty):
    d = queued("pagerduty", pagerduty.url, notification_kind)
    delivery.deliver(d.pk, NOW)
    assert pagerduty.docs()[0]["event_action"] == action
    assert pagerduty.docs()[0]["dedup_key"] == "vigil-1-1790000000"


@pytest.mark.parametrize("kind", KINDS)
def test_too_many_requests_schedules_the_retry_when_the_provider_asks(kind, receiver_of):
    receiver = receiver_of(kind)
    receiver.then(429, times=REQUESTS.get(kind, 1), Retry_After="120")
    d = queued(kind, receiver.url)
    assert delivery.deliver(d.pk, NOW) == "retry"
    d.refresh_from_db()
    assert d.status == Delivery.Status.RETRY
    assert d.next_attempt_at == NOW + timedelta(seconds=120)
    (attempt,) = attempts(d)
    assert (attempt.outcome, attempt.status_code) == ("retry", 429)
    assert attempt.answer == receiver.requests[0].answer.decode()
    assert "429" in Channel.objects.get(pk=d.channel_id).last_error

    assert delivery.deliver(d.pk, NOW + timedelta(seconds=119)) == "not claimed"
    assert delivery.deliver(d.pk, NOW + timedelta(seconds=120)) == "sent"
    assert [a.outcome for a in attempts(d)] == ["retry", "sent"]
    retried = receiver.requests[len(receiver.requests) // 2 :]
    assert [r.body for r in retried] == [r.body for r in receiver.requests[: len(retried)]]


@pytest.mark.parametrize("kind", KINDS)
def test_a_server_error_retries_with_backoff(kind, receiver_of):
    receiver = receiver_of(kind)
    receiver.then(500, times=REQUESTS.get(kind, 1))
    d = queued(kind, receiver.url)
    assert delivery.deliver(d.pk, NOW) == "retry"
    d.refresh_from_db()
    # The first backoff is between half and all of the base, 10 s.
    assert NOW + timedelta(seconds=5) <= d.next_attempt_at <= NOW + timedelta(seconds=10)
    (attempt,) = attempts(d)
    assert (attempt.outcome, attempt.status_code) == ("retry", 500)
    assert "500" in attempt.error


@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_request_fails_without_retry(kind, receiver_of):
    receiver = receiver_of(kind)
    receiver.then(400, times=REQUESTS.get(kind, 1))
    d = queued(kind, receiver.url)
    assert delivery.deliver(d.pk, NOW) == "failed"
    d.refresh_from_db()
    assert d.status == Delivery.Status.FAILED
    (attempt,) = attempts(d)
    assert (attempt.outcome, attempt.status_code) == ("failed", 400)
    assert attempt.answer
    assert delivery.deliver(d.pk, NOW + timedelta(hours=1)) == "not claimed"


@pytest.mark.parametrize("kind", KINDS)
def test_a_refused_address_fails_for_good_in_the_log(kind, receiver_of, settings):
    receiver = receiver_of(kind)
    settings.NOTIFY_ALLOWED_NETWORKS = ""
    d = queued(kind, receiver.url)
    assert delivery.deliver(d.pk, NOW) == "failed"
    (attempt,) = attempts(d)
    assert attempt.status_code is None and "not allowed" in attempt.error
    assert receiver.requests == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_test_notification_reaches_each_provider(kind, receiver_of):
    receiver = receiver_of(kind)
    config, secrets = channel_settings(kind, receiver.url)
    channel = Channel.objects.create(name="ops", kind=kind, config=config, secrets=secrets)
    outcome, attempt = delivery.send_test(channel, NOW)
    assert outcome == "sent"
    assert attempt.status_code == SUCCESS[kind][0]
    assert receiver.problems() == []
    if kind == "pagerduty":
        assert [d["event_action"] for d in receiver.docs()] == ["trigger", "resolve"]
    if kind == "opsgenie":
        assert [r.path.rsplit("/", 1)[-1] for r in receiver.requests] == ["alerts", "close"]
    if kind == "webhook":
        assert receiver.docs()[0]["test"] is True
