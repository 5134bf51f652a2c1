"""PagerDuty Events API v2: one event per alert of a notification.

Each alert's `key` (stable for one firing of one alert) is the event's
`dedup_key`, so the trigger, the acknowledgement and the resolution land on
one PagerDuty alert, and a trigger sent again after a timeout is merged into
it instead of paging twice. PagerDuty answers 202; 400 means "invalid event"
(permanent), 429 and 5xx are retried.
"""

from __future__ import annotations

import re

from vigil.notify.channels._common import (
    check_settings,
    combined,
    dumps,
    format_value,
    one_line,
    required,
    subject,
    truncate,
    url_error,
)
from vigil.notify.transports import HttpTransport, Message, Sent, register

DEFAULT_API_BASE = "https://events.pagerduty.com"
ACTIONS = {
    "firing": "trigger",
    "repeat": "trigger",
    "flapping": "trigger",
    "acknowledged": "acknowledge",
    "resolved": "resolve",
    "gone": "resolve",
}
SEVERITIES = {"critical": "critical", "warning": "warning", "info": "info"}
# Integration keys of services and rulesets are 32 letters and digits.
ROUTING_KEY = re.compile(r"^[A-Za-z0-9]{32}$")
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255


def summary(message: Message, item: dict) -> str:
    """'CRITICAL: disk full on web-1 = 97.3: / is 97% full', at most 1024 characters."""
    text = f"{item.get('severity') or message.severity}".upper()
    text += f": {item.get('rule') or message.rule}"
    if where := subject(item):
        text += f" on {where}"
    if value := format_value(item.get("value")):
        text += f" = {value}"
    if description := item.get("description"):
        text += f": {description}"
    if message.kind == "flapping":
        text = "Flapping: " + text
    return truncate(one_line(text), MAX_SUMMARY)


def dedup_key(message: Message, item: dict) -> str:
    return str(item.get("key") or f"vigil-{message.delivery_key}")[:MAX_DEDUP_KEY]


def event(message: Message, item: dict, routing_key: str, action: str) -> dict:
    """One Events API v2 event; acknowledge and resolve carry only the key."""
    doc: dict = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key(message, item),
    }
    if action != "trigger":
        return doc
    severity = item.get("severity") or message.severity
    details = {
        "rule": item.get("rule") or message.rule,
        "server": item.get("server") or "",
        "location": item.get("location") or "",
        "value": item.get("value"),
        "description": item.get("description") or "",
        "labels": item.get("labels") or {},
        "fired_at": item.get("fired_at"),
        "predicted_at": item.get("predicted_at"),
        "alert": item.get("alert"),
    }
    body: dict = {
        "summary": summary(message, item),
        "source": subject(item) or "vigil",
        "severity": SEVERITIES.get(severity, "info"),
        "timestamp": item.get("fired_at") or message.created,
        "class": item.get("rule") or message.rule,
        "custom_details": details,
    }
    if item.get("location"):
        body["group"] = item["location"]
    if item.get("metric"):
        body["component"] = item["metric"]
    if not body["timestamp"]:
        del body["timestamp"]
    doc["payload"] = body
    doc["client"] = "Vigil"
    if message.link:
        doc["client_url"] = message.link
        doc["links"] = [{"href": message.link, "text": "Alerts in Vigil"}]
    return doc


def events(message: Message, routing_key: str) -> list[dict]:
    """The events of one notification, in the order they are sent.

    A test is a trigger and its resolve under a key of its own, so that it
    shows in PagerDuty and closes itself."""
    if message.is_test:
        item = {
            "key": f"vigil-test-{message.delivery_key}",
            "rule": "test",
            "severity": "info",
            "description": message.title,
        }
        return [
            event(message, item, routing_key, "trigger"),
            event(message, item, routing_key, "resolve"),
        ]
    action = ACTIONS.get(message.kind, "trigger")
    items = message.items or [{}]
    return [event(message, item, routing_key, action) for item in items]


@register
class PagerDutyTransport(HttpTransport):
    kind = "pagerduty"
    label = "PagerDuty"
    secret_fields = ("routing_key",)

    @classmethod
    def validate(cls, config: dict, secrets: dict) -> dict[str, str]:
        errors: dict[str, str] = {}
        key = (secrets or {}).get("routing_key")
        if not key:
            errors["routing_key"] = "The routing key (the integration key) is required."
        elif not isinstance(key, str) or not ROUTING_KEY.fullmatch(key):
            errors["routing_key"] = (
                "A routing key is the 32 letters and digits of an Events API v2 integration."
            )
        base = (config or {}).get("api_base")
        if base and (problem := url_error(base, credentials=False)):
            errors["api_base"] = problem
        return errors

    def notify(self, message: Message) -> Sent:
        check_settings(self)
        routing_key = required(self.secrets, "routing_key", "routing key")
        base = (self.config.get("api_base") or DEFAULT_API_BASE).rstrip("/")
        url = f"{base}/v2/enqueue"
        return combined([self.post(url, dumps(e), {}) for e in events(message, routing_key)])
