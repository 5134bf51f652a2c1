"""Notifications as channels see them, built in code for the channel tests."""

from __future__ import annotations

import uuid

from vigil.notify.transports import Message

ROUTING_KEY = "R0123456789abcdef0123456789ABCDE"
OPSGENIE_KEY = "eb243592-faa2-4ba2-a551-1afdf565c889"
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "f0e1d2c3b4a5968778695a4b3c2d1e0f"
WEBHOOK_SECRET = "a-signing-key-of-some-length"
LINK = "https://vigil.example.com/alerts/"
CREATED = "2026-09-21T10:00:00+00:00"


def item(n: int = 1, **kw) -> dict:
    """One alert of a notification, as vigil.alerts.dispatch.item() writes it."""
    doc = {
        "alert": n,
        "key": f"vigil-{n}-1790000000",
        "rule": "disk full",
        "severity": "critical",
        "server": f"web-{n}",
        "location": "Paris",
        "labels": {"mountpoint": "/"},
        "value": 97.25 + n,
        "description": f"/ on web-{n} is {97 + n}% full",
        "fired_at": "2026-09-21T09:58:00+00:00",
        "resolved_at": None,
        "predicted_at": None,
        "acknowledged_by": None,
        "comment": "",
    }
    doc.update(kw)
    return doc


def message(kind: str = "firing", items: int | list[dict] = 1, **kw) -> Message:
    listed = [item(n) for n in range(1, items + 1)] if isinstance(items, int) else items
    severity = kw.pop("severity", "critical")
    rule = kw.pop("rule", "disk full")
    fields = {
        "kind": kind,
        "title": f"{severity.upper()}: {rule} on {len(listed)} servers",
        "severity": severity,
        "rule": rule,
        "items": listed,
        "link": LINK,
        "delivery_key": str(uuid.uuid4()),
        "created": CREATED,
    }
    if kind == "test":
        fields.update(title="Test notification from Vigil to ops", severity="info", rule="test")
        fields["items"] = []
    fields.update(kw)
    return Message(**fields)


# Which receiver fixture plays each channel's provider.
RECEIVER_OF = {
    "pagerduty": "pagerduty",
    "opsgenie": "opsgenie",
    "slack": "slack",
    "sms": "twilio",
    "webhook": "webhook",
}
RECIPIENTS = ["+4915112345678", "+33612345678"]


def channel_settings(kind: str, base: str) -> tuple[dict, dict]:
    """(config, secrets) of a channel of `kind` whose provider is at `base`."""
    return {
        "pagerduty": ({"api_base": base}, {"routing_key": ROUTING_KEY}),
        "opsgenie": ({"region": "eu", "api_base": base}, {"api_key": OPSGENIE_KEY}),
        "slack": ({}, {"webhook_url": f"{base}/services/T0001/B0001/abcdefghijklmnop"}),
        "sms": (
            {
                "api_base": base,
                "account_sid": TWILIO_SID,
                "from_number": "+15005550006",
                "to_numbers": list(RECIPIENTS),
            },
            {"auth_token": TWILIO_TOKEN},
        ),
        "webhook": (
            {"url": f"{base}/hooks/vigil", "headers": {"X-Team": "ops"}},
            {"secret": WEBHOOK_SECRET},
        ),
    }[kind]
