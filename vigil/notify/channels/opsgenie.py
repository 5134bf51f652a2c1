"""Opsgenie Alert API: create, acknowledge and close one Opsgenie alert per
Vigil alert, addressed by `alias` (the alert's stable key).

Opsgenie de-duplicates creates by alias while the alert is open, so a create
sent again after a timeout raises its count instead of paging twice. Every
call is answered 202 with a request id; the work happens after.
"""

from __future__ import annotations

from urllib.parse import quote

from vigil.notify.channels._common import (
    check_settings,
    combined,
    dumps,
    format_value,
    one_line,
    required,
    secret_error,
    subject,
    truncate,
    url_error,
)
from vigil.notify.transports import HttpTransport, Message, Sent, register

API_BASES = {"us": "https://api.opsgenie.com", "eu": "https://api.eu.opsgenie.com"}
PRIORITIES = {"critical": "P1", "warning": "P3", "info": "P5"}
OPENING = ("firing", "repeat", "flapping")
CLOSING = ("resolved", "gone")
# Opsgenie's documented limits.
MAX_MESSAGE = 130
MAX_ALIAS = 512
MAX_DESCRIPTION = 15000
MAX_TAG = 50
MAX_TAGS = 20
MAX_ENTITY = 512
MAX_USER = 100
MAX_NOTE = 25000
MAX_DETAILS = 8000  # all keys and values together


def alias(message: Message, item: dict) -> str:
    return str(item.get("key") or f"vigil-{message.delivery_key}")[:MAX_ALIAS]


def alert_message(message: Message, item: dict) -> str:
    """The one line Opsgenie shows: 'CRITICAL: disk full on web-1 = 97.3' (≤130)."""
    text = (
        f"{(item.get('severity') or message.severity).upper()}: {item.get('rule') or message.rule}"
    )
    if where := subject(item):
        text += f" on {where}"
    if value := format_value(item.get("value")):
        text += f" = {value}"
    return truncate(one_line(text), MAX_MESSAGE) or "Vigil alert"


def description(message: Message, item: dict) -> str:
    lines = [str(item.get("description") or message.title)]
    for label, value in (
        ("Rule", item.get("rule") or message.rule),
        ("Server", item.get("server")),
        ("Location", item.get("location")),
        ("Value", format_value(item.get("value"))),
        ("Fired at", item.get("fired_at")),
        ("Predicted at", item.get("predicted_at")),
        ("Alerts", message.link),
    ):
        if value:
            lines.append(f"{label}: {value}")
    return truncate("\n".join(lines), MAX_DESCRIPTION)


def tags(message: Message, item: dict) -> list[str]:
    severity = item.get("severity") or message.severity
    candidates = ["vigil", f"severity:{severity}", f"rule:{item.get('rule') or message.rule}"]
    if item.get("location"):
        candidates.append(f"location:{item['location']}")
    out: list[str] = []
    for tag in candidates:
        # Opsgenie splits tags given as text on commas.
        tag = truncate(one_line(tag).replace(",", " "), MAX_TAG)
        if tag and tag not in out:
            out.append(tag)
    return out[:MAX_TAGS]


def details(message: Message, item: dict) -> dict[str, str]:
    """Key-value text pairs (Opsgenie's details), labels first, within 8000 characters."""
    pairs: dict[str, str] = {}
    for name, value in (item.get("labels") or {}).items():
        pairs[f"label:{name}"] = str(value)
    for name in ("server", "location", "value", "fired_at", "predicted_at", "alert"):
        value = item.get(name)
        if value not in (None, ""):
            pairs[name] = format_value(value) if name == "value" else str(value)
    if message.link:
        pairs["link"] = message.link
    kept: dict[str, str] = {}
    size = 0
    for name, value in pairs.items():
        name, value = truncate(name, 100), truncate(value, 500)
        if size + len(name) + len(value) > MAX_DETAILS:
            break
        kept[name] = value
        size += len(name) + len(value)
    return kept


def create(message: Message, item: dict) -> dict:
    severity = item.get("severity") or message.severity
    doc = {
        "message": alert_message(message, item),
        "alias": alias(message, item),
        "description": description(message, item),
        "priority": PRIORITIES.get(severity, "P5"),
        "tags": tags(message, item),
        "details": details(message, item),
        "source": "Vigil",
        "entity": truncate(subject(item), MAX_ENTITY),
    }
    if message.kind == "flapping":
        doc["note"] = "The alert is flapping: it fires and resolves again and again."
    elif message.kind == "repeat":
        doc["note"] = "Still firing."
    return doc


def acknowledgement(item: dict) -> dict:
    who = one_line(str(item.get("acknowledged_by") or "")) or "Vigil"
    note = str(item.get("comment") or "") or "Acknowledged in Vigil"
    return {"user": truncate(who, MAX_USER), "source": "Vigil", "note": truncate(note, MAX_NOTE)}


def closing(message: Message) -> dict:
    note = "The server stopped reporting" if message.kind == "gone" else "Resolved in Vigil"
    if message.is_test:
        note = "Test notification: closed at once"
    return {"user": "Vigil", "source": "Vigil", "note": note}


def requests(message: Message, base: str) -> list[tuple[str, dict]]:
    """(URL, body) of every call one notification makes, in order."""
    base = base.rstrip("/")

    def action(item: dict, verb: str) -> str:
        return (
            f"{base}/v2/alerts/{quote(alias(message, item), safe='')}/{verb}?identifierType=alias"
        )

    if message.is_test:
        item = {
            "key": f"vigil-test-{message.delivery_key}",
            "rule": "test",
            "severity": "info",
            "description": message.title,
        }
        return [
            (f"{base}/v2/alerts", create(message, item)),
            (action(item, "close"), closing(message)),
        ]
    out: list[tuple[str, dict]] = []
    for item in message.items or [{}]:
        if message.kind in CLOSING:
            out.append((action(item, "close"), closing(message)))
        elif message.kind == "acknowledged":
            out.append((action(item, "acknowledge"), acknowledgement(item)))
        else:
            out.append((f"{base}/v2/alerts", create(message, item)))
    return out


def api_base(config: dict) -> str:
    return config.get("api_base") or API_BASES.get(config.get("region") or "us", API_BASES["us"])


@register
class OpsgenieTransport(HttpTransport):
    kind = "opsgenie"
    label = "Opsgenie"
    secret_fields = ("api_key",)

    @classmethod
    def validate(cls, config: dict, secrets: dict) -> dict[str, str]:
        errors: dict[str, str] = {}
        config = config or {}
        if problem := secret_error((secrets or {}).get("api_key"), "API key"):
            errors["api_key"] = problem
        region = config.get("region") or "us"
        if region not in API_BASES:
            errors["region"] = "Choose us (api.opsgenie.com) or eu (api.eu.opsgenie.com)."
        base = config.get("api_base")
        if base and (problem := url_error(base, credentials=False)):
            errors["api_base"] = problem
        return errors

    def notify(self, message: Message) -> Sent:
        check_settings(self)
        key = required(self.secrets, "api_key", "API key")
        headers = {"Authorization": f"GenieKey {key}"}
        return combined(
            [
                self.post(url, dumps(body), headers)
                for url, body in requests(message, api_base(self.config))
            ]
        )
