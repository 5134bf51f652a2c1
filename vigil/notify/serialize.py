"""Channels, routes and deliveries to and from the JSON of the REST API.

Secrets are write-only: an answer says of each one only "set" or "not set";
input sets a secret with a string, clears it with null, and keeps it when
left out (or when sent back as "set" / "not set", so that an answer can be
sent back as it is). Errors and receivers' answers go out with the
channel's secrets masked.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from vigil.alerts.models import Rule
from vigil.alerts.serialize import (
    Invalid,
    _clean,
    _read,
    count,
    flag,
    optional,
    reference,
    text,
    when,
)
from vigil.notify import configure
from vigil.notify.models import Attempt, Channel, Delivery, Route
from vigil.servers.models import Location, Tag

MAX_CONFIG_BYTES = 64 * 1024
MAX_SECRET = 4000


def _config(value: object) -> dict:
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    if len(orjson.dumps(value)) > MAX_CONFIG_BYTES:
        raise ValueError(f"must be at most {MAX_CONFIG_BYTES // 1024} KiB as JSON")
    if "\x00" in orjson.dumps(value).decode():
        raise ValueError("must not contain NUL characters")
    return value


def _secrets(value: object) -> dict[str, str | None]:
    """New values of secrets: a string sets, null clears; the markers of an
    answer ("set", "not set") keep the stored value."""
    if not isinstance(value, dict):
        raise ValueError('must be an object such as {"routing_key": "..."}')
    out: dict[str, str | None] = {}
    for name, secret in value.items():
        if secret is None:
            out[name] = None
        elif secret in (configure.SET, configure.NOT_SET):
            continue
        else:
            out[name] = text(MAX_SECRET)(secret) if secret != "" else None
    return out


CHANNEL_FIELDS: dict[str, Callable[[object], object]] = {
    "name": text(100),
    "kind": text(20),
    "enabled": flag,
    "is_fallback": flag,
    "config": _config,
    "secrets": _secrets,
}
# Read-only fields a client may send back unchanged from an answer.
CHANNEL_ANSWER_ONLY = ("id", "label", "created", "last_success_at", "last_error", "last_error_at")


def channel_from(data: object, channel: Channel | None = None, replace: bool = False) -> Channel:
    """A validated, unsaved channel: new (POST), changed by the fields sent
    (PATCH), or replaced (PUT: fields not sent take their defaults, except
    secrets, which are kept unless sent)."""
    values = _read(data, CHANNEL_FIELDS, allowed_extra=CHANNEL_ANSWER_ONLY)
    if channel is None:
        kind = values.get("kind")
        if not kind:
            raise Invalid(
                {"kind": [f"required: one of {', '.join(k for k, _ in configure.kinds())}"]}
            )
        if configure.transport(str(kind)) is None:
            known = ", ".join(k for k, _ in configure.kinds())
            raise Invalid({"kind": [f"no channel of kind {kind!r}: one of {known}"]})
        channel = Channel(kind=kind)
    elif values.get("kind", channel.kind) != channel.kind:
        raise Invalid({"kind": ["cannot change: create a channel of the new kind instead"]})
    if replace:
        channel.enabled, channel.is_fallback, channel.config = True, False, {}
    for key in ("name", "enabled", "is_fallback", "config"):
        if key in values:
            setattr(channel, key, values[key])
    secrets, errors = configure.merge_secrets(
        channel.kind, channel.secrets, values.get("secrets", {})
    )
    if errors:
        raise Invalid({f"secrets.{k}": [v] for k, v in errors.items()})
    channel.secrets = secrets
    _clean(channel, exclude=["kind", "secrets"])
    problems = configure.validate(channel.kind, channel.config, secrets)
    if problems:
        raise Invalid({_field_name(channel, k, secrets): [v] for k, v in problems.items()})
    return channel


def _field_name(channel: Channel, key: str, secrets: dict) -> str:
    """config.<key> or secrets.<key>: where validate()'s error belongs."""
    if key == "kind":
        return key
    return f"{configure.error_target(channel.kind, key, channel.config, secrets)}.{key}"


def channel_dict(channel: Channel) -> dict:
    return {
        "id": channel.pk,
        "name": channel.name,
        "kind": channel.kind,
        "label": configure.label_of(channel.kind),
        "enabled": channel.enabled,
        "is_fallback": channel.is_fallback,
        "config": channel.config,
        "secrets": configure.secret_state(channel.kind, channel.secrets),
        "created": when(channel.created),
        "last_success_at": when(channel.last_success_at),
        "last_error": configure.redact(channel.last_error, channel.secrets),
        "last_error_at": when(channel.last_error_at),
    }


# --- Routes -----------------------------------------------------------------------


def _channel_ids(value: object) -> list[int]:
    if not isinstance(value, list) or len(value) > 1000:
        raise ValueError("must be a list of channel ids")
    ids = [reference(Channel)(v) for v in value]
    return sorted(set(ids))


ROUTE_FIELDS: dict[str, Callable[[object], object]] = {
    "name": text(100),
    "enabled": flag,
    "is_default": flag,
    "rule": optional(reference(Rule)),
    "severity": text(10),
    "location": optional(reference(Location)),
    "tag": optional(reference(Tag)),
    "channels": _channel_ids,
    "escalate_after_minutes": count,
    "escalate_to": _channel_ids,
}
ROUTE_KEYS = ("rule", "location", "tag")
ROUTE_LISTS = ("channels", "escalate_to")


def route_from(
    data: object, route: Route | None = None, replace: bool = False
) -> tuple[Route, dict[str, list[int]]]:
    """A validated, unsaved route and its channel lists (set them after saving)."""
    values = _read(data, ROUTE_FIELDS, allowed_extra=("id",))
    if route is None:
        route = Route()
    elif replace:
        for name in ROUTE_FIELDS:
            if name not in ROUTE_LISTS:
                field = Route._meta.get_field(name)
                setattr(route, field.attname, field.get_default())
    lists: dict[str, list[int]] = {}
    for key, value in values.items():
        if key in ROUTE_LISTS:
            lists[key] = value
        else:
            setattr(route, f"{key}_id" if key in ROUTE_KEYS else key, value)
    if replace:
        lists = {name: lists.get(name, []) for name in ROUTE_LISTS}
    current = {
        name: (lists[name] if name in lists else _current(route, name)) for name in ROUTE_LISTS
    }
    _clean(route)
    problems = configure.route_errors(route.escalate_after_minutes, current["escalate_to"])
    if problems:
        raise Invalid({k: [v] for k, v in problems.items()})
    return route, lists


def _current(route: Route, name: str) -> list[int]:
    if route.pk is None:
        return []
    return sorted(getattr(route, name).values_list("pk", flat=True))


def route_dict(route: Route) -> dict:
    """A route, read with its channels prefetched."""
    return {
        "id": route.pk,
        "name": route.name,
        "enabled": route.enabled,
        "is_default": route.is_default,
        "rule": route.rule_id,
        "severity": route.severity,
        "location": route.location_id,
        "tag": route.tag_id,
        "channels": sorted(c.pk for c in route.channels.all()),
        "escalate_after_minutes": route.escalate_after_minutes,
        "escalate_to": sorted(c.pk for c in route.escalate_to.all()),
    }


# --- Deliveries -------------------------------------------------------------------


def delivery_dict(delivery: Delivery) -> dict:
    """A delivery, read with its channel and notification (select_related)."""
    n = delivery.notification
    channel = delivery.channel
    return {
        "id": delivery.pk,
        "notification": {"id": n.pk, "kind": n.kind, "title": n.title} if n else None,
        "channel": {"id": channel.pk, "name": channel.name, "kind": channel.kind},
        "purpose": delivery.purpose,
        "status": delivery.status,
        "key": str(delivery.key),
        "attempts": delivery.attempts,
        "created": when(delivery.created),
        "next_attempt_at": when(delivery.next_attempt_at),
        "sent_at": when(delivery.sent_at),
        "last_error": configure.redact(delivery.last_error, channel.secrets),
    }


def attempt_dict(attempt: Attempt, secrets: dict) -> dict:
    return {
        "number": attempt.number,
        "at": when(attempt.at),
        "duration_ms": attempt.duration_ms,
        "status_code": attempt.status_code,
        "outcome": attempt.outcome,
        "answer": configure.redact(attempt.answer, secrets),
        "error": configure.redact(attempt.error, secrets),
    }


def delivery_detail_dict(delivery: Delivery) -> dict:
    """A delivery with its log of attempts (prefetched as `log`), oldest first."""
    attempts = sorted(delivery.log.all(), key=lambda a: (a.number, a.pk))
    return {
        **delivery_dict(delivery),
        "log": [attempt_dict(a, delivery.channel.secrets) for a in attempts],
    }
