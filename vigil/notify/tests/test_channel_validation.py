"""Each HTTP channel's validate(): clear errors per field, none for good settings."""

from __future__ import annotations

import pytest

from vigil.notify.tests.samples import (
    OPSGENIE_KEY,
    ROUTING_KEY,
    TWILIO_SID,
    TWILIO_TOKEN,
    channel_settings,
)
from vigil.notify.transports import transport_for

SMS = {"account_sid": TWILIO_SID, "from_number": "+15005550006", "to_numbers": ["+4915112345678"]}


@pytest.mark.parametrize("kind", ["pagerduty", "opsgenie", "slack", "sms", "webhook"])
def test_it_accepts_the_settings_the_tests_use(kind):
    config, secrets = channel_settings(kind, "http://127.0.0.1:8080")
    assert transport_for(kind).validate(config, secrets) == {}


@pytest.mark.parametrize(
    "kind, config, secrets, field, says",
    [
        ("pagerduty", {}, {}, "routing_key", "is required"),
        ("pagerduty", {}, {"routing_key": "short"}, "routing_key", "32 letters and digits"),
        ("pagerduty", {}, {"routing_key": ROUTING_KEY[:-1] + "\n"}, "routing_key", "32 letters"),
        ("pagerduty", {}, {"routing_key": ROUTING_KEY + "\n"}, "routing_key", "32 letters"),
        (
            "pagerduty",
            {"api_base": "ftp://events.example.com"},
            {"routing_key": ROUTING_KEY},
            "api_base",
            "https://",
        ),
        ("opsgenie", {}, {}, "api_key", "is required"),
        ("opsgenie", {}, {"api_key": "key with spaces"}, "api_key", "spaces"),
        ("opsgenie", {"region": "mars"}, {"api_key": OPSGENIE_KEY}, "region", "us"),
        ("opsgenie", {"api_base": "opsgenie"}, {"api_key": OPSGENIE_KEY}, "api_base", "https://"),
        ("slack", {}, {}, "webhook_url", "is required"),
        ("slack", {}, {"webhook_url": "javascript:alert(1)"}, "webhook_url", "https://"),
        ("slack", {}, {"webhook_url": "https://"}, "webhook_url", "no host"),
        ("slack", {}, {"webhook_url": "https://hooks.slack.com:99999/x"}, "webhook_url", "port"),
        ("webhook", {}, {}, "url", "is required"),
        ("webhook", {"url": "file:///etc/passwd"}, {}, "url", "https://"),
        (
            "webhook",
            {"url": "https://user:pw@hooks.example.com/x"},
            {},
            "url",
            "secret URL field",
        ),
        (
            "webhook",
            {"url": "https://a.example.com"},
            {"url": "https://b.example.com"},
            "url",
            "once",
        ),
        ("webhook", {"url": "https://a.example.com", "headers": ["X-A"]}, {}, "headers", "mapping"),
        (
            "webhook",
            {"url": "https://a.example.com", "headers": {"X-A\r\nX-B": "1"}},
            {},
            "headers",
            "not a valid header name",
        ),
        (
            "webhook",
            {"url": "https://a.example.com", "headers": {"X-A": "1\r\nX-Injected: 1"}},
            {},
            "headers",
            "line breaks",
        ),
        (
            "webhook",
            {"url": "https://a.example.com", "headers": {"X-Vigil-Signature": "forged"}},
            {},
            "headers",
            "set by Vigil",
        ),
        (
            "webhook",
            {"url": "https://a.example.com", "headers": {"Content-Type": "text/plain"}},
            {},
            "headers",
            "set by Vigil",
        ),
        (
            "webhook",
            {"url": "https://a.example.com", "headers": {"X-A\n": "1"}},
            {},
            "headers",
            "not a valid header name",
        ),
        ("webhook", {"url": "https://a.example.com"}, {"secret": "short"}, "secret", "16"),
        (
            "sms",
            {**SMS, "account_sid": ""},
            {"auth_token": TWILIO_TOKEN},
            "account_sid",
            "required",
        ),
        ("sms", {**SMS, "account_sid": "AC123"}, {"auth_token": TWILIO_TOKEN}, "account_sid", "AC"),
        (
            "sms",
            {**SMS, "from_number": "0151 123"},
            {"auth_token": TWILIO_TOKEN},
            "from_number",
            "E.164",
        ),
        (
            "sms",
            {**SMS, "to_numbers": []},
            {"auth_token": TWILIO_TOKEN},
            "to_numbers",
            "at least one",
        ),
        (
            "sms",
            {**SMS, "to_numbers": ["+4915112345678", "0049 151 12345678"]},
            {"auth_token": TWILIO_TOKEN},
            "to_numbers",
            "E.164",
        ),
        (
            "sms",
            {**SMS, "to_numbers": ["+0123456"]},
            {"auth_token": TWILIO_TOKEN},
            "to_numbers",
            "E.164",
        ),
        ("sms", SMS, {}, "auth_token", "required"),
        (
            "sms",
            {**SMS, "api_base": "twilio"},
            {"auth_token": TWILIO_TOKEN},
            "api_base",
            "https://",
        ),
    ],
)
def test_it_names_the_field_that_is_wrong_and_says_why(kind, config, secrets, field, says):
    errors = transport_for(kind).validate(config, secrets)
    assert field in errors, errors
    assert says in errors[field]


def test_a_webhook_url_with_credentials_may_be_a_secret():
    errors = transport_for("webhook").validate({}, {"url": "https://u:p@hooks.example.com/x"})
    assert errors == {}


def test_an_sms_sender_may_be_an_alphanumeric_id():
    validate = transport_for("sms").validate
    assert validate({**SMS, "from_number": "Vigil"}, {"auth_token": TWILIO_TOKEN}) == {}
    errors = validate({**SMS, "from_number": "A much too long name"}, {"auth_token": TWILIO_TOKEN})
    assert "from_number" in errors
