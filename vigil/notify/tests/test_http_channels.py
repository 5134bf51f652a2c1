"""The HTTP channels against real receivers on 127.0.0.1 that check each
request against the provider's documented API and answer as it does."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from vigil.notify.tests import receivers
from vigil.notify.tests.samples import (
    RECEIVER_OF,
    RECIPIENTS,
    TWILIO_SID,
    TWILIO_TOKEN,
    WEBHOOK_SECRET,
    channel_settings,
    item,
    message,
)
from vigil.notify.transports import Transport, TransportError, transport_for

KINDS = list(RECEIVER_OF)
SUCCESS = {"pagerduty": 202, "opsgenie": 202, "slack": 200, "sms": 201, "webhook": 200}
HOSTILE = ["<script>alert(1)</script>", "<!channel>", "a & b \"quoted\" 'single'", "ж€😀"]


def transport(kind: str, base: str) -> Transport:
    config, secrets = channel_settings(kind, base)
    return transport_for(kind)(config, secrets)


@pytest.fixture
def receiver_of(request):
    def get(kind: str) -> receivers.Receiver:
        return request.getfixturevalue(RECEIVER_OF[kind])

    return get


# --- What each provider receives ------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("notification", ["firing", "acknowledged", "resolved", "test"])
def test_each_channel_sends_what_its_provider_documents(kind, notification, receiver_of):
    receiver = receiver_of(kind)
    msg = message(notification, items=[item(1, acknowledged_by="alice"), item(2)])
    sent = transport(kind, receiver.url).notify(msg)
    assert receiver.problems() == []
    assert receiver.requests, "nothing was sent"
    assert {r.status for r in receiver.requests} == {SUCCESS[kind]}
    assert sent.status == SUCCESS[kind]


@pytest.mark.parametrize(
    "kind, actions",
    [
        ("firing", ["trigger", "trigger"]),
        ("repeat", ["trigger", "trigger"]),
        ("flapping", ["trigger", "trigger"]),
        ("acknowledged", ["acknowledge", "acknowledge"]),
        ("resolved", ["resolve", "resolve"]),
        ("gone", ["resolve", "resolve"]),
        ("test", ["trigger", "resolve"]),
    ],
)
def test_pagerduty_receives_one_event_per_alert_with_its_dedup_key(kind, actions, pagerduty):
    msg = message(kind, items=2)
    sent = transport("pagerduty", pagerduty.url).notify(msg)
    docs = pagerduty.docs()
    assert [d["event_action"] for d in docs] == actions
    keys = [d["dedup_key"] for d in docs]
    if kind == "test":
        assert keys == [f"vigil-test-{msg.delivery_key}"] * 2
    else:
        assert keys == ["vigil-1-1790000000", "vigil-2-1790000000"]
    assert '"message":"Event processed"' in sent.answer
    assert pagerduty.problems() == []


@pytest.mark.parametrize(
    "kind, calls",
    [
        ("firing", ["/v2/alerts", "/v2/alerts"]),
        ("flapping", ["/v2/alerts", "/v2/alerts"]),
        (
            "acknowledged",
            [
                "/v2/alerts/vigil-1-1790000000/acknowledge",
                "/v2/alerts/vigil-2-1790000000/acknowledge",
            ],
        ),
        (
            "resolved",
            ["/v2/alerts/vigil-1-1790000000/close", "/v2/alerts/vigil-2-1790000000/close"],
        ),
        ("gone", ["/v2/alerts/vigil-1-1790000000/close", "/v2/alerts/vigil-2-1790000000/close"]),
    ],
)
def test_opsgenie_receives_create_acknowledge_and_close_by_alias(kind, calls, opsgenie):
    transport("opsgenie", opsgenie.url).notify(message(kind, items=2))
    assert [r.path for r in opsgenie.requests] == calls
    assert {r.header("authorization") for r in opsgenie.requests} == {
        f"GenieKey {channel_settings('opsgenie', '')[1]['api_key']}"
    }
    if kind in ("firing", "flapping"):
        assert [d["alias"] for d in opsgenie.docs()] == ["vigil-1-1790000000", "vigil-2-1790000000"]
    else:
        assert all(r.query == {"identifierType": ["alias"]} for r in opsgenie.requests)
    assert opsgenie.problems() == []


def test_opsgenie_refuses_a_wrong_key_and_the_channel_does_not_retry(opsgenie):
    config, secrets = channel_settings("opsgenie", opsgenie.url)
    secrets = {"api_key": "00000000-0000-0000-0000-000000000000"}
    with pytest.raises(TransportError) as raised:
        transport_for("opsgenie")(config, secrets).notify(message())
    assert raised.value.status == 401 and raised.value.permanent
    assert "Could not authenticate" in raised.value.answer


def test_twilio_receives_one_form_per_recipient_with_basic_auth(twilio):
    msg = message(items=3)
    transport("sms", twilio.url).notify(msg)
    assert twilio.problems() == []
    assert [r.doc["To"] for r in twilio.requests] == RECIPIENTS
    expected = base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
    for request in twilio.requests:
        assert request.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
        assert request.header("content-type") == "application/x-www-form-urlencoded"
        assert request.header("authorization") == f"Basic {expected}"
        assert request.doc["From"] == "+15005550006"
        assert request.doc["Body"] == f"CRITICAL disk full: web-1 98.25 +2 more {msg.link}"


def test_an_sms_recipient_that_fails_does_not_keep_the_others_from_their_page(twilio):
    twilio.then(400)  # the first recipient's number is refused
    with pytest.raises(TransportError) as raised:
        transport("sms", twilio.url).notify(message())
    assert [r.status for r in twilio.requests] == [400, 201]
    assert raised.value.permanent
    assert f"sent to 1 of 2 recipients; {RECIPIENTS[0]}" in str(raised.value)
    assert '"code":21211' in raised.value.answer


def test_an_sms_recipient_that_can_be_retried_makes_the_delivery_retry(twilio):
    twilio.then(201)
    twilio.then(503, Retry_After="30")
    with pytest.raises(TransportError) as raised:
        transport("sms", twilio.url).notify(message())
    assert not raised.value.permanent and raised.value.retry_after == 30


@pytest.mark.parametrize("name", HOSTILE)
def test_twilio_receives_hostile_names_as_written_within_one_segment(name, twilio):
    transport("sms", twilio.url).notify(message(items=[item(1, server=name)]))
    assert twilio.problems() == []
    assert name in twilio.requests[0].doc["Body"]
    assert {r.status for r in twilio.requests} == {201}


@pytest.mark.parametrize("name", HOSTILE)
def test_slack_receives_hostile_names_escaped(name, slack):
    transport("slack", slack.url).notify(message(items=[item(1, server=name, description=name)]))
    assert slack.problems() == []  # the receiver refuses stray &, < and >
    text = slack.docs()[0]["attachments"][0]["text"]
    assert name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in text


def test_slack_refuses_unescaped_markup_and_the_channel_gives_up(slack):
    class Careless(transport_for("slack")):
        def notify(self, message):
            return self.post(self.secrets["webhook_url"], b'{"text": "<!channel> hi"}', {})

    config, secrets = channel_settings("slack", slack.url)
    with pytest.raises(TransportError) as raised:
        Careless(config, secrets).notify(message())
    assert raised.value.permanent and raised.value.answer == "invalid_payload"


@pytest.mark.parametrize("name", HOSTILE)
def test_pagerduty_and_opsgenie_receive_hostile_names_as_written(name, pagerduty, opsgenie):
    msg = message(items=[item(1, server=name)])
    transport("pagerduty", pagerduty.url).notify(msg)
    transport("opsgenie", opsgenie.url).notify(msg)
    assert pagerduty.problems() == [] and opsgenie.problems() == []
    assert pagerduty.docs()[0]["payload"]["source"] == name
    assert opsgenie.docs()[0]["entity"] == name


# --- Webhook signatures ---------------------------------------------------------


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance: int = 300) -> bool:
    """The check docs/webhooks.md gives receivers, as written there."""
    timestamp = headers["x-vigil-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    signed = timestamp.encode() + b"." + body
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["x-vigil-signature"])


def test_a_webhook_receiver_can_verify_the_signature(webhook):
    msg = message(items=2)
    transport("webhook", webhook.url).notify(msg)
    (request,) = webhook.requests
    assert webhook.problems() == []
    assert verify(WEBHOOK_SECRET, request.headers, request.body)
    assert not verify("another-secret-key", request.headers, request.body)
    assert not verify(WEBHOOK_SECRET, request.headers, request.body.replace(b"web-1", b"web-9"))
    assert request.header("x-vigil-delivery") == msg.delivery_key
    assert request.header("x-vigil-event") == "firing"
    assert request.header("x-team") == "ops"
    assert request.path == "/hooks/vigil"


def test_a_webhook_signed_with_another_key_is_refused_for_good(webhook):
    config, _ = channel_settings("webhook", webhook.url)
    with pytest.raises(TransportError) as raised:
        transport_for("webhook")(config, {"secret": "not-the-receivers-key"}).notify(message())
    assert raised.value.permanent and raised.value.status == 400
    assert "X-Vigil-Signature does not match" in raised.value.answer


def test_a_webhook_url_kept_as_a_secret_sends_its_credentials_as_basic_auth(webhook):
    base = webhook.url.replace("http://", "http://hook:s3cret@")
    transport_for("webhook")({}, {"url": f"{base}/in", "secret": WEBHOOK_SECRET}).notify(message())
    expected = base64.b64encode(b"hook:s3cret").decode()
    assert webhook.requests[0].header("authorization") == f"Basic {expected}"


# --- Answers: retry or not ----------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_too_many_requests_is_retried_after_what_the_provider_asks(kind, receiver_of):
    receiver = receiver_of(kind)
    receiver.then(429, times=2, Retry_After="120")
    with pytest.raises(TransportError) as raised:
        transport(kind, receiver.url).notify(message())
    error = raised.value
    assert (error.permanent, error.retry_after, error.status) == (False, 120, 429)
    assert error.answer == receiver.requests[0].answer.decode()
    assert error.answer


@pytest.mark.parametrize("kind", KINDS)
def test_a_server_error_is_retried(kind, receiver_of):
    receiver = receiver_of(kind)
    receiver.then(500, times=2)
    with pytest.raises(TransportError) as raised:
        transport(kind, receiver.url).notify(message())
    assert not raised.value.permanent and raised.value.status == 500
    assert raised.value.retry_after is None


@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_request_is_not_retried(kind, receiver_of):
    receiver = receiver_of(kind)
    receiver.then(400, times=2)
    with pytest.raises(TransportError) as raised:
        transport(kind, receiver.url).notify(message())
    assert raised.value.permanent and raised.value.status == 400


@pytest.mark.parametrize("kind", KINDS)
def test_a_slow_answer_times_out_and_is_retried(kind, receiver_of, quick_timeout):
    receiver = receiver_of(kind)
    receiver.then(SUCCESS[kind], times=2, delay=quick_timeout + 0.5)
    started = time.monotonic()
    with pytest.raises(TransportError) as raised:
        transport(kind, receiver.url).notify(message())
    assert not raised.value.permanent
    assert "within 0.3 s" in str(raised.value)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("kind", KINDS)
def test_a_refused_connection_is_retried(kind, loopback_allowed):
    with pytest.raises(TransportError) as raised:
        transport(kind, receivers.closed_url()).notify(message())
    assert not raised.value.permanent
    assert "connection refused" in str(raised.value)


@pytest.mark.parametrize("kind", KINDS)
def test_every_retry_carries_the_same_idempotency_key(kind, receiver_of):
    receiver = receiver_of(kind)
    receiver.then(500)
    msg = message()
    channel = transport(kind, receiver.url)
    with pytest.raises(TransportError):
        channel.notify(msg)
    channel.notify(msg)
    # The first request of the first attempt, and of the second.
    first, last = receiver.requests[0], receiver.requests[len(receiver.requests) // 2]
    if kind == "pagerduty":
        assert first.doc["dedup_key"] == last.doc["dedup_key"] == "vigil-1-1790000000"
    elif kind == "opsgenie":
        assert first.doc["alias"] == last.doc["alias"] == "vigil-1-1790000000"
    elif kind == "webhook":
        assert first.header("x-vigil-delivery") == last.header("x-vigil-delivery")
        assert first.body == last.body
    else:
        assert first.body == last.body
    assert receiver.problems() == []


# --- The SSRF guard -----------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_loopback_is_refused_for_good_unless_the_operator_allows_it(kind, receiver_of, settings):
    receiver = receiver_of(kind)
    settings.NOTIFY_ALLOWED_NETWORKS = ""
    settings.NOTIFY_ALLOW_PRIVATE = False
    with pytest.raises(TransportError) as raised:
        transport(kind, receiver.url).notify(message())
    assert raised.value.permanent
    assert "127.0.0.1" in str(raised.value) and "not allowed" in str(raised.value)
    assert receiver.requests == []

    settings.NOTIFY_ALLOW_PRIVATE = True
    assert transport(kind, receiver.url).notify(message()).status == SUCCESS[kind]
    settings.NOTIFY_ALLOW_PRIVATE = False
    settings.NOTIFY_ALLOWED_NETWORKS = "127.0.0.1/32"
    assert transport(kind, receiver.url).notify(message()).status == SUCCESS[kind]


def test_a_channel_without_its_key_fails_for_good_without_sending(pagerduty):
    config, _ = channel_settings("pagerduty", pagerduty.url)
    with pytest.raises(TransportError) as raised:
        transport_for("pagerduty")(config, {}).notify(message())
    assert raised.value.permanent and "routing key" in str(raised.value)
    assert pagerduty.requests == []


@pytest.mark.parametrize(
    "kind, config, secrets, says",
    [
        ("webhook", {"headers": {"X-A": "1\r\nX-Injected: 1"}}, {}, "headers setting is wrong"),
        ("opsgenie", {}, {"api_key": "key\r\nX-Injected: 1"}, "api_key setting is wrong"),
        ("sms", {"to_numbers": ["0151 1234"]}, {}, "to_numbers setting is wrong"),
    ],
)
def test_settings_edited_past_validation_fail_for_good_before_sending(
    kind, config, secrets, says, receiver_of
):
    receiver = receiver_of(kind)
    good_config, good_secrets = channel_settings(kind, receiver.url)
    channel = transport_for(kind)({**good_config, **config}, {**good_secrets, **secrets})
    with pytest.raises(TransportError) as raised:
        channel.notify(message())
    assert raised.value.permanent and says in str(raised.value)
    assert receiver.requests == []
