"""From alert states to the notification queue, with the noise taken out.

1. Mark every live alert silenced (an active silence matches it) or
   suppressed (its server is down, or its location is out).
2. Firing alerts no one was told about become one FIRING notification per
   rule, once the first of them has waited ALERT_GROUP_WAIT_SECONDS: the
   servers that fire together in that time arrive as one message.
3. Owed messages (resolved, gone, flapping) go out the same way, grouped.
4. Alerts still firing, unacknowledged, get a REPEAT after the rule's
   repeat interval.
All of it in one transaction with the alert rows locked, so a second
dispatcher finds nothing left to send.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from vigil.alerts.matching import labels_match, parse_matchers, render
from vigil.alerts.models import Alert, AlertEvent, Notification, Rule, Silence
from vigil.alerts.outages import locations_out
from vigil.servers.models import Server


def active_silences(now: datetime) -> list[Silence]:
    candidates = Silence.objects.filter(starts_at__lte=now).filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=now)
    )
    return [s for s in candidates if s.is_active(now)]


def silence_matches(silence: Silence, alert: Alert, tags: set[int]) -> bool:
    """All that the silence sets must match the alert."""
    if silence.until_resolved_id is not None and silence.until_resolved_id != alert.pk:
        return False
    if silence.rule_id is not None and silence.rule_id != alert.rule_id:
        return False
    if silence.server_id is not None and silence.server_id != alert.server_id:
        return False
    location_id = alert.location_id or (alert.server.location_id if alert.server_id else None)
    if silence.location_id is not None and silence.location_id != location_id:
        return False
    if silence.tag_id is not None and silence.tag_id not in tags:
        return False
    return labels_match(parse_matchers(silence.matchers), alert.labels)


def _tags(alerts: list[Alert]) -> dict[int, set[int]]:
    ids = {a.server_id for a in alerts if a.server_id}
    out: dict[int, set[int]] = defaultdict(set)
    for server_id, tag_id in Server.tags.through.objects.filter(server_id__in=ids).values_list(
        "server_id", "tag_id"
    ):
        out[server_id].add(tag_id)
    return out


def item(alert: Alert) -> dict:
    """One alert in a notification: everything a channel needs to say it."""
    rule = alert.rule
    server = alert.server
    location = alert.location or (server.location if server else None)
    values = {
        "server": server.name if server else "",
        "location": location.name if location else "",
        "metric": rule.metric,
        "value": alert.value,
        "threshold": rule.threshold,
        "predicted": alert.predicted_at.isoformat() if alert.predicted_at else "",
        "rule": rule.name,
    }
    description = render(rule.description, values, alert.labels) if rule.description else ""
    fired = int(alert.fired_at.timestamp()) if alert.fired_at else 0
    return {
        "alert": alert.pk,
        # Stable for one firing of one alert: PagerDuty's dedup_key, Opsgenie's alias.
        "key": f"vigil-{alert.pk}-{fired}",
        "rule": rule.name,
        "metric": rule.metric,
        "severity": rule.severity,
        "server": values["server"],
        "location": values["location"],
        "labels": alert.labels,
        "value": alert.value,
        "description": description,
        "fired_at": alert.fired_at.isoformat() if alert.fired_at else None,
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "predicted_at": values["predicted"] or None,
        "acknowledged_by": alert.acknowledged_by.get_username() if alert.acknowledged_by else None,
        "comment": alert.ack_comment,
    }


TITLES = {
    Notification.Kind.FIRING: "{severity}: {rule}",
    Notification.Kind.REPEAT: "Still firing, {severity}: {rule}",
    Notification.Kind.RESOLVED: "Resolved: {rule}",
    Notification.Kind.GONE: "Stopped reporting: {rule}",
    Notification.Kind.FLAPPING: "Flapping: {rule}",
    Notification.Kind.ACKNOWLEDGED: "Acknowledged: {rule}",
}


def notify(kind: str, rule: Rule, alerts: list[Alert], now: datetime) -> Notification:
    """Queue one notification about `alerts` (all of one rule)."""
    location_alerts = [a for a in alerts if a.location_id and not a.series_id]
    subjects = [a.subject for a in alerts]
    title = TITLES[kind].format(severity=rule.severity.upper(), rule=rule.name)
    if len(subjects) == 1:
        title += f" on {subjects[0]}"
    else:
        title += f" on {len(subjects)} servers"
    notification = Notification.objects.create(
        kind=kind,
        rule=rule,
        severity=rule.severity,
        location=location_alerts[0].location if len(location_alerts) == 1 else None,
        title=title[:500],
        items=[item(a) for a in alerts],
        created=now,
    )
    notification.alerts.set(alerts)
    return notification


def run(now: datetime) -> dict[str, int]:
    """One pass over the live alerts; returns how many notifications of each kind."""
    counts: dict[str, int] = defaultdict(int)
    wait = timedelta(seconds=settings.ALERT_GROUP_WAIT_SECONDS)
    with transaction.atomic():
        live = list(
            Alert.objects.select_for_update(of=("self",))
            .filter(~Q(state=Alert.State.OK) | ~Q(owes=""))
            .select_related("rule", "server__location", "location", "acknowledged_by")
            .order_by("pk")
        )
        if not live:
            return counts
        _mark(live, now)
        firing = [
            a
            for a in live
            if a.state == Alert.State.FIRING
            and a.notified_at is None
            and not (a.silenced or a.suppressed or a.flapping)
        ]
        for rule, group in _by_rule(firing):
            if min(a.fired_at for a in group) <= now - wait:
                notify(Notification.Kind.FIRING, rule, group, now)
                counts["firing"] += 1
                Alert.objects.filter(pk__in=[a.pk for a in group]).update(notified_at=now)
        owing = [a for a in live if a.owes]
        for kind in (
            Notification.Kind.RESOLVED,
            Notification.Kind.GONE,
            Notification.Kind.FLAPPING,
        ):
            # A flapping alert changes at every evaluation: waiting for a quiet
            # moment would say "flapping" only once it had stopped.
            held = timedelta(0) if kind == Notification.Kind.FLAPPING else wait
            due = [a for a in owing if a.owes == kind and a.changed_at <= now - held]
            if kind != Notification.Kind.RESOLVED:
                # Nobody asked to hear about a muted alert's flapping or
                # vanishing; a resolution of one they were told about, they did.
                muted = [a for a in due if a.silenced or a.suppressed]
                Alert.objects.filter(pk__in=[a.pk for a in muted]).update(owes="")
                due = [a for a in due if a not in muted]
            for rule, group in _by_rule(due):
                notify(kind, rule, group, now)
                counts[kind] += 1
                # After a resolution, the next firing is a new incident.
                told = {"owes": "", "notified_at": None}
                if kind == Notification.Kind.FLAPPING:
                    told["notified_at"] = now
                Alert.objects.filter(pk__in=[a.pk for a in group]).update(**told)
        repeat = [
            a
            for a in live
            if a.state == Alert.State.FIRING
            and a.notified_at is not None
            and a.rule.repeat_seconds > 0
            and a.notified_at <= now - timedelta(seconds=a.rule.repeat_seconds)
            and not (a.silenced or a.suppressed or a.flapping or a.acknowledged_at)
        ]
        for rule, group in _by_rule(repeat):
            notify(Notification.Kind.REPEAT, rule, group, now)
            counts["repeat"] += 1
            Alert.objects.filter(pk__in=[a.pk for a in group]).update(notified_at=now)
    return dict(counts)


def refresh_marks(now: datetime) -> None:
    """Mark the live alerts silenced or not right away, so that the alerts
    page shows a silence the moment it is made or ended, not at the next pass."""
    with transaction.atomic():
        live = list(
            Alert.objects.select_for_update(of=("self",))
            .exclude(state=Alert.State.OK)
            .select_related("rule", "server__location", "location")
        )
        _mark(live, now)


def _mark(live: list[Alert], now: datetime) -> None:
    """Refresh `silenced` and `suppressed` of the live alerts."""
    silences = active_silences(now)
    tags = _tags(live) if any(s.tag_id for s in silences) else {}
    out = locations_out(now)
    down = set(
        Server.objects.filter(
            pk__in={a.server_id for a in live if a.server_id}, status=Server.Status.DOWN
        ).values_list("pk", flat=True)
    )
    changed = []
    for alert in live:
        silenced = any(
            silence_matches(s, alert, tags.get(alert.server_id, set())) for s in silences
        )
        suppressed = ""
        if alert.rule.kind == Rule.Kind.HOST_DOWN:
            if alert.server_id and alert.server.location_id in out:
                suppressed = "location outage"
        elif alert.server_id in down:
            suppressed = "server down"
        if (silenced, suppressed) != (alert.silenced, alert.suppressed):
            alert.silenced, alert.suppressed = silenced, suppressed
            changed.append(alert)
    if changed:
        Alert.objects.bulk_update(changed, ["silenced", "suppressed"])


def _by_rule(alerts: list[Alert]) -> list[tuple[Rule, list[Alert]]]:
    groups: dict[tuple[int, bool], list[Alert]] = defaultdict(list)
    for alert in alerts:
        # A location outage is its own message, never merged with servers.
        groups[(alert.rule_id, bool(alert.location_id and not alert.series_id))].append(alert)
    return [(group[0].rule, group) for group in groups.values()]


def acknowledge(alert: Alert, user, comment: str, now: datetime) -> bool:
    """Acknowledge a firing alert: no more repeats until it resolves. Tells
    whoever was told it fired. False if it is not firing or already acknowledged."""
    with transaction.atomic():
        won = Alert.objects.filter(
            pk=alert.pk, state=Alert.State.FIRING, acknowledged_at__isnull=True
        ).update(acknowledged_at=now, acknowledged_by=user, ack_comment=comment[:2000])
        if not won:
            return False
        alert.refresh_from_db()
        AlertEvent.objects.create(
            alert=alert,
            rule_id=alert.rule_id,
            server_id=alert.server_id,
            kind=AlertEvent.Kind.ACKNOWLEDGED,
            at=now,
            value=alert.value,
            text=f"{user.get_username() if user else 'someone'}: {comment}"[:2000],
        )
        if alert.notified_at is not None:
            notify(Notification.Kind.ACKNOWLEDGED, alert.rule, [alert], now)
    return True
