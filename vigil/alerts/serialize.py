"""Rules, alerts, silences and notifications to and from the JSON of the REST
API: plain functions, no views. Reading input checks each field's type here
(a number where a number belongs, no NUL characters, bounded lengths); the
models' full_clean() does the rest, so the API, the pages and the admin
refuse the same rules for the same reasons."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, time

from django.core.exceptions import ValidationError
from django.db import models

from vigil.alerts.dispatch import item
from vigil.alerts.models import Alert, AlertEvent, Notification, Rule, ServerGroup, Silence
from vigil.lib.times import parse_time
from vigil.servers.models import Location, Server, Tag

# A text field of the API holds at most this much (the models bound the rest).
MAX_TEXT = 10_000
MAX_INT = 2_147_483_647
# Unix seconds of 9999-12-31.
MAX_TIME = 253_402_300_799
STATES = {0: "ok", 1: "pending", 2: "firing", 3: "gone"}


class Invalid(ValueError):
    """Input that cannot be used, with a message per field."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in fields.items()))
        self.fields = fields


def when(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


# --- Field readers: (value) -> python value, ValueError with a message ---------


def text(limit: int = MAX_TEXT) -> Callable[[object], str]:
    def read(value: object) -> str:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        if len(value) > limit:
            raise ValueError(f"must be at most {limit} characters")
        return value

    return read


def number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    if not math.isfinite(value) or abs(value) > 1e300:
        raise ValueError("must be a finite number, at most 1e300 either way")
    return float(value)


def optional(read: Callable[[object], object]) -> Callable[[object], object]:
    def maybe(value: object) -> object:
        return None if value is None else read(value)

    return maybe


def count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number")
    if not 0 <= value <= MAX_INT:
        raise ValueError(f"must be between 0 and {MAX_INT}")
    return value


def flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def moment(value: object) -> datetime:
    """Unix seconds (a number) or ISO 8601 text; UTC without a zone."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be unix seconds or an ISO 8601 time")
    try:
        seconds = parse_time(text(100)(value)) if isinstance(value, str) else int(number(value))
    except OverflowError:
        raise ValueError("must be between 1970 and 9999") from None
    if not 0 <= seconds <= MAX_TIME:
        raise ValueError("must be between 1970 and 9999")
    return datetime.fromtimestamp(seconds, tz=UTC)


def clock(value: object) -> time:
    """A time of day, "22:00" or "22:00:00"."""
    try:
        return time.fromisoformat(text(20)(value))
    except ValueError:
        raise ValueError("must be a time of day such as 22:00") from None


def reference(model: type[models.Model]) -> Callable[[object], int]:
    """The id of an existing row of `model`."""

    def read(value: object) -> int:
        name = model._meta.verbose_name
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be the id of a {name}")
        if not 0 < value < 2**63 or not model.objects.filter(pk=value).exists():
            raise ValueError(f"no {name} with id {value}")
        return value

    return read


RULE_FIELDS: dict[str, Callable[[object], object]] = {
    "name": text(200),
    "enabled": flag,
    "severity": text(10),
    "kind": text(12),
    "metric": text(200),
    "matchers": text(),
    "scope": text(10),
    "location": optional(reference(Location)),
    "tag": optional(reference(Tag)),
    "group": optional(reference(ServerGroup)),
    "server": optional(reference(Server)),
    "aggregation": text(5),
    "window_seconds": count,
    "operator": text(2),
    "threshold": optional(number),
    "recovery_threshold": optional(number),
    "per_core": flag,
    "forecast_seconds": count,
    "no_data_seconds": count,
    "for_seconds": count,
    "for_evaluations": count,
    "repeat_seconds": count,
    "description": text(),
}
SILENCE_FIELDS: dict[str, Callable[[object], object]] = {
    "comment": text(500),
    "server": optional(reference(Server)),
    "location": optional(reference(Location)),
    "tag": optional(reference(Tag)),
    "rule": optional(reference(Rule)),
    "matchers": text(),
    "until_resolved": optional(reference(Alert)),
    "starts_at": moment,
    "ends_at": optional(moment),
    "weekdays": text(20),
    "window_start": optional(clock),
    "window_minutes": count,
}
FOREIGN_KEYS = {"location", "tag", "group", "server", "rule", "until_resolved"}


def _read(data: object, readers: dict, allowed_extra: tuple[str, ...] = ()) -> dict[str, object]:
    """Each known field of a JSON object through its reader; every problem at once."""
    if not isinstance(data, dict):
        raise Invalid({"body": ["must be a JSON object"]})
    out: dict[str, object] = {}
    errors: dict[str, list[str]] = {}
    for key, value in data.items():
        if key in allowed_extra:
            continue
        read = readers.get(key)
        if read is None:
            errors[key[:100]] = ["unknown field"]
            continue
        try:
            out[key] = read(value)
        except ValueError as exc:
            errors[key] = [str(exc)]
    if errors:
        raise Invalid(errors)
    return out


def _assign(obj: models.Model, values: dict[str, object]) -> None:
    for key, value in values.items():
        setattr(obj, f"{key}_id" if key in FOREIGN_KEYS else key, value)


def _clean(obj: models.Model, exclude: list[str] | None = None, unique: bool = True) -> None:
    try:
        obj.full_clean(exclude=exclude, validate_unique=unique)
    except ValidationError as exc:
        raise Invalid(
            {
                ("body" if key == "__all__" else key): list(messages)
                for key, messages in exc.message_dict.items()
            }
        ) from None


# --- Rules --------------------------------------------------------------------


def rule_from(data: object, rule: Rule | None = None, replace: bool = False) -> Rule:
    """A validated, unsaved rule: `rule` changed by the fields of `data`
    (PATCH), a new one (POST), or `rule` replaced whole (PUT: fields not
    given take their defaults)."""
    values = _read(data, RULE_FIELDS)
    if rule is None:
        rule = Rule()
    elif replace:
        for name in RULE_FIELDS:
            field = Rule._meta.get_field(name)
            setattr(rule, field.attname, field.get_default())
    _assign(rule, values)
    _clean(rule)
    return rule


def backtest_rule_from(data: object) -> tuple[Rule, int]:
    """The unsaved rule of a backtest (a name is optional and need not be
    unique) and its number of days."""
    if not isinstance(data, dict):
        raise Invalid({"body": ["must be a JSON object"]})
    days = data.get("days", 7)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 90:
        raise Invalid({"days": ["must be a whole number of days from 1 to 90"]})
    values = _read(data, RULE_FIELDS, allowed_extra=("days",))
    rule = Rule(name=values.pop("name", "backtest") or "backtest")
    _assign(rule, values)
    _clean(rule, unique=False)
    return rule, days


def rule_dict(rule: Rule) -> dict:
    return {
        "id": rule.pk,
        **{key: getattr(rule, f"{key}_id" if key in FOREIGN_KEYS else key) for key in RULE_FIELDS},
        "is_default": rule.is_default,
        "created": when(rule.created),
        "updated": when(rule.updated),
        "last_evaluated": when(rule.last_evaluated),
        "last_error": rule.last_error,
    }


# --- Alerts -------------------------------------------------------------------


def section(alert: Alert) -> str:
    """Where the alerts page lists a live alert; ok and gone alerts are themselves."""
    if alert.state not in (Alert.State.PENDING, Alert.State.FIRING):
        return STATES[alert.state]
    if alert.silenced or alert.suppressed:
        return "silenced"
    if alert.state == Alert.State.PENDING:
        return "pending"
    return "acknowledged" if alert.acknowledged_at is not None else "firing"


def alert_dict(alert: Alert) -> dict:
    """An alert read with its rule, server (and its location), location and
    acknowledging user (select_related)."""
    server = alert.server
    location = alert.location or (server.location if server else None)
    return {
        "id": alert.pk,
        "rule": {"id": alert.rule_id, "name": alert.rule.name, "severity": alert.rule.severity},
        "server": {"id": server.pk, "name": server.name} if server else None,
        "location": location.name if location else None,
        "series": alert.series_id,
        "labels": alert.labels,
        "state": STATES.get(alert.state, str(alert.state)),
        "section": section(alert),
        "description": item(alert)["description"],
        "value": alert.value if alert.value is None or math.isfinite(alert.value) else None,
        "since": when(alert.since),
        "fired_at": when(alert.fired_at),
        "resolved_at": when(alert.resolved_at),
        "changed_at": when(alert.changed_at),
        "predicted_at": when(alert.predicted_at),
        "silenced": alert.silenced,
        "suppressed": alert.suppressed,
        "flapping": alert.flapping,
        "acknowledged_by": alert.acknowledged_by.get_username() if alert.acknowledged_by else None,
        "acknowledged_at": when(alert.acknowledged_at),
        "ack_comment": alert.ack_comment,
    }


def event_dict(event: AlertEvent) -> dict:
    return {
        "id": event.pk,
        "kind": event.kind,
        "at": when(event.at),
        "value": event.value,
        "text": event.text,
    }


def comment_from(data: object) -> str:
    values = _read(data, {"comment": text(2000)})
    return str(values.get("comment", ""))


# --- Silences -----------------------------------------------------------------


def silence_from(data: object, user) -> Silence:
    values = _read(data, SILENCE_FIELDS)
    silence = Silence(created_by=user if user.is_authenticated else None)
    _assign(silence, values)
    _clean(silence)
    return silence


def silence_dict(silence: Silence, now: datetime) -> dict:
    return {
        "id": silence.pk,
        "comment": silence.comment,
        **{key: getattr(silence, f"{key}_id") for key in sorted(FOREIGN_KEYS - {"group"})},
        "matchers": silence.matchers,
        "starts_at": when(silence.starts_at),
        "ends_at": when(silence.ends_at),
        "weekdays": silence.weekdays,
        "window_start": silence.window_start.isoformat() if silence.window_start else None,
        "window_minutes": silence.window_minutes,
        "active": silence.is_active(now),
        "expired": silence.ends_at is not None and silence.ends_at <= now,
        "created_by": silence.created_by.get_username() if silence.created_by else None,
        "created": when(silence.created),
    }


# --- Notifications ------------------------------------------------------------


def notification_dict(n: Notification) -> dict:
    """A queued notification, read with its rule and location (select_related)
    and its alerts' ids (prefetch_related)."""
    return {
        "id": n.pk,
        "kind": n.kind,
        "rule": {"id": n.rule_id, "name": n.rule.name},
        "severity": n.severity,
        "location": n.location.name if n.location else None,
        "title": n.title,
        "items": n.items,
        "alerts": sorted(a.pk for a in n.alerts.all()),
        "created": when(n.created),
        "delivered_at": when(n.delivered_at),
    }
