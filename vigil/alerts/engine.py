"""Alert states in the database: one evaluation of one rule.

1. Lock the rule's row; if another evaluator did this round already, stop.
2. Measure the condition on every series of the rule (conditions.measure).
3. Step the state machine of all of them at once (evaluate.step), from the
   stored rows; a series that never breached has no row and starts at ok.
4. Write only the rows that exist or change, with an event per firing,
   resolution and flap, and the notifications they owe (dispatch sends them).
Everything happens in one transaction per rule, so two evaluators never
fire the same alert twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from vigil.alerts import evaluate as ev
from vigil.alerts import fetch
from vigil.alerts.conditions import measure
from vigil.alerts.models import Alert, AlertEvent, Rule, Silence
from vigil.metrics.models import Sample

log = logging.getLogger(__name__)

FLAP_CHECKS = 21  # Icinga's window: the last 21 evaluations, 20 possible changes
FLAP_MASK = (1 << FLAP_CHECKS) - 1


@dataclass
class Context:
    """What every rule of one evaluation pass shares."""

    now: datetime
    down: np.ndarray  # ids of servers that are down
    cores: dict[int, float] = field(default_factory=dict)

    @property
    def ts(self) -> int:
        return int(self.now.timestamp())


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def flap_ratio(history: np.ndarray) -> np.ndarray:
    """Share of state changes among the last 21 evaluations (0..1), per alert.
    Evaluations before an alert's row existed were ok: zeros in its history."""
    changes = (history ^ (history >> 1)) & (FLAP_MASK >> 1)
    counted = np.array([bin(int(c)).count("1") for c in changes], dtype=np.float64)
    return counted / (FLAP_CHECKS - 1)


def evaluate_rule(rule: Rule, ctx: Context) -> dict[str, int]:
    """One evaluation of `rule` at ctx.now; returns counts of what changed.

    The reading and computing happen outside the write transaction (on
    SQLite a write transaction holds off ingest); the transaction then locks
    the rule's row and checks again that no one evaluated it meanwhile."""
    half = timedelta(seconds=settings.ALERT_EVALUATION_INTERVAL_SECONDS / 2)

    def done(last) -> bool:
        return last is not None and last > ctx.now - half

    if done(Rule.objects.filter(pk=rule.pk).values_list("last_evaluated", flat=True).first()):
        return {"skipped": 1}
    targets = fetch.targets(rule)
    measured = measure(rule, targets, ctx.ts, ctx.cores, ctx.down)
    with transaction.atomic():
        last = (
            # NO KEY: rows that refer to the rule (notifications queued by a
            # dispatcher, an acknowledgement) must not wait for this.
            Rule.objects.select_for_update(no_key=True)
            .filter(pk=rule.pk)
            .values_list("last_evaluated", flat=True)
            .first()
        )
        if done(last):
            return {"skipped": 1}
        counts = _apply(rule, ctx, targets, measured)
        Rule.objects.filter(pk=rule.pk).update(last_evaluated=ctx.now, last_error="")
    return counts


def _active_rows(rule: Rule) -> dict[int, Alert]:
    """Rows of the rule worth loading: not ok, owing a message, or with state
    changes among the last evaluations (for flap detection)."""
    from django.db.models import Q

    rows = Alert.objects.filter(rule=rule, series__isnull=False).filter(
        ~Q(state=Alert.State.OK) | ~Q(history=0) | ~Q(owes="") | Q(flapping=True)
    )
    return {a.series_id: a for a in rows}


def _apply(rule: Rule, ctx: Context, targets: fetch.Targets, m) -> dict[str, int]:
    rows = _active_rows(rule)
    n = len(targets)
    index = {int(sid): i for i, sid in enumerate(targets.ids.tolist())}
    states = ev.States.new(n)
    for sid, alert in rows.items():
        i = index.get(sid)
        if i is None or alert.state == Alert.State.GONE:
            continue
        states.code[i] = alert.state
        states.since[i] = alert.since.timestamp() if alert.since else np.nan
        states.streak[i] = alert.streak
    # No data in the window holds the state as it is: a firing alert neither
    # resolves nor fires again because its agent is late.
    step = ev.step(
        states, m.breaching, m.recovered, ctx.ts, rule.for_seconds, max(1, rule.for_evaluations)
    )
    touched = set(np.flatnonzero(step.states.code != ev.OK).tolist())
    touched |= {index[sid] for sid in rows if sid in index}
    counts = {"series": n, "fired": 0, "resolved": 0, "flapping": 0, "gone": 0}
    changed: list[Alert] = []
    created: list[Alert] = []
    events: list[AlertEvent] = []
    missing = [int(targets.ids[i]) for i in touched if int(targets.ids[i]) not in rows]
    # A series that breached long ago has a quiet row: load it rather than
    # creating a second one.
    for alert in Alert.objects.filter(rule=rule, series_id__in=missing):
        rows[alert.series_id] = alert
    before = {alert.pk: _snapshot(alert) for alert in rows.values()}
    gone_after = settings.ALERT_SERIES_GONE_AFTER_SECONDS
    down = set(ctx.down.tolist())
    interrupted = _interrupted_since(ctx.ts - gone_after)
    for i in sorted(touched):
        sid = int(targets.ids[i])
        alert = rows.get(sid)
        if alert is None:
            alert = Alert(
                rule=rule,
                series_id=sid,
                server_id=int(targets.server_ids[i]),
                labels=targets.labels[i],
            )
            created.append(alert)
        else:
            changed.append(alert)
        value = float(m.value[i])
        alert.value = None if np.isnan(value) or np.isinf(value) else value
        predicted = m.predicted[i]
        alert.predicted_at = None if np.isnan(predicted) else at(predicted)
        # A series that stopped while its server kept reporting (an unmounted
        # file system) is said to be gone once, not "no data" forever.
        age = ctx.ts - targets.last_ts[i]
        server_id = int(targets.server_ids[i])
        vanished = (
            not age <= gone_after
            and (np.isnan(value) or rule.kind == Rule.Kind.NO_DATA)
            and server_id not in down
            and server_id not in interrupted(server_id)
        )
        old, new = alert.state, int(step.states.code[i])
        if old == Alert.State.GONE:
            if vanished or np.isnan(value):
                continue
            old = Alert.State.OK
        # Beyond what the rule asks for, a longer streak changes nothing:
        # capping it keeps a steadily firing alert's row unchanged.
        alert.streak = min(int(step.states.streak[i]), max(1, rule.for_evaluations))
        since = step.states.since[i]
        alert.since = None if np.isnan(since) else at(since)
        if new == ev.FIRING and vanished:
            new = Alert.State.GONE
        transition(alert, old, new, ctx, events, counts)
        alert.state = new
        firing_bit = 1 if new == Alert.State.FIRING else 0
        alert.history = ((alert.history << 1) | firing_bit) & FLAP_MASK
    _flapping(changed + created, ctx, events, counts)
    # Rows of series the rule no longer watches (retired server, scope changed).
    for sid, alert in rows.items():
        if sid not in index and alert.state != Alert.State.OK:
            transition(alert, alert.state, Alert.State.OK, ctx, events, counts)
            alert.state = Alert.State.OK
            alert.history = 0
            changed.append(alert)
    Alert.objects.bulk_create(created)
    _save(changed, before)
    for event in events:
        event.alert_id = event.alert.pk
    AlertEvent.objects.bulk_create(events)
    return counts


def close_disabled(ctx: Context) -> int:
    """Resolve the open alerts of disabled rules: a rule switched off must not
    leave alerts firing forever. People who were paged hear "resolved"."""
    closed = 0
    with transaction.atomic():
        open_alerts = (
            Alert.objects.select_for_update()
            .filter(rule__enabled=False)
            .exclude(state=Alert.State.OK)
        )
        events: list[AlertEvent] = []
        counts = {"resolved": 0, "gone": 0, "fired": 0}
        changed = []
        for alert in open_alerts:
            transition(alert, alert.state, Alert.State.OK, ctx, events, counts)
            alert.state = Alert.State.OK
            alert.history = 0
            alert.since = None
            alert.streak = 0
            changed.append(alert)
        for e in events:
            e.text = "the rule was disabled"
        Alert.objects.bulk_update(changed, UPDATED_FIELDS)
        AlertEvent.objects.bulk_create(events)
        closed = len(changed)
    return closed


def _snapshot(alert: Alert) -> tuple:
    """What a row holds, but its current value."""
    return tuple(getattr(alert, name) for name in SNAPSHOT_FIELDS)


def _save(changed: list[Alert], before: dict[int, tuple]) -> None:
    """Write the rows that changed. Most rows of a pass are alerts that
    still fire, whose value alone moved: those get one light statement per
    500 rows instead of a row-by-row CASE over every field."""
    full = [a for a in changed if _snapshot(a) != before.get(a.pk)]
    light = [a for a in changed if _snapshot(a) == before.get(a.pk)]
    if full:
        Alert.objects.bulk_update(full, UPDATED_FIELDS, batch_size=500)
    for start in range(0, len(light), 500):
        part = light[start : start + 500]
        rows = ", ".join(["(%s, CAST(%s AS DOUBLE PRECISION))"] * len(part))
        params = [v for a in part for v in (a.pk, a.value)]
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH v(id, value) AS (VALUES {rows}) "  # noqa: S608 (placeholders only)
                "UPDATE alerts_alert SET value = (SELECT v.value FROM v "
                "WHERE v.id = alerts_alert.id) WHERE id IN (SELECT id FROM v)",
                params,
            )


def _interrupted_since(since: int):
    """A lookup of servers that were down at some time since `since` (their
    `up` series holds a 0): an agent back from an outage sends its spool
    oldest first, and its series are late, not gone. One query per server
    asked about, and only series that look gone are asked about."""
    cache: dict[int, set[int]] = {}

    def lookup(server_id: int) -> set[int]:
        if server_id not in cache:
            was_down = Sample.objects.filter(
                series__metric="up", series__server_id=server_id, ts__gte=since, value__lt=1
            ).exists()
            cache[server_id] = {server_id} if was_down else set()
        return cache[server_id]

    return lookup


UPDATED_FIELDS = [
    "state",
    "since",
    "streak",
    "value",
    "predicted_at",
    "fired_at",
    "resolved_at",
    "changed_at",
    "notified_at",
    "owes",
    "history",
    "flapping",
    "acknowledged_by",
    "acknowledged_at",
    "ack_comment",
]
SNAPSHOT_FIELDS = [
    Alert._meta.get_field(name).attname for name in UPDATED_FIELDS if name != "value"
]


def event(alert: Alert, kind: str, ctx: Context, text: str = "") -> AlertEvent:
    return AlertEvent(
        alert=alert,
        rule_id=alert.rule_id,
        server_id=alert.server_id,
        kind=kind,
        at=ctx.now,
        value=alert.value,
        text=text,
    )


def transition(alert: Alert, old: int, new: int, ctx: Context, events, counts) -> None:
    """Record a change of state: times, the event, and what it owes people."""
    if old == new or (old, new) in ((ev.OK, ev.PENDING), (ev.PENDING, ev.OK)):
        if old != new:
            alert.changed_at = ctx.now
        return
    alert.changed_at = ctx.now
    if new == Alert.State.FIRING:
        counts["fired"] += 1
        alert.resolved_at = None
        if alert.owes in ("resolved", "gone"):
            # Fired again before its resolution went out: to the people told
            # about it, it never stopped. Same incident, same key.
            alert.owes = ""
        elif not alert.flapping:
            alert.fired_at = ctx.now
            alert.notified_at = None
        events.append(event(alert, AlertEvent.Kind.FIRING, ctx))
        return
    kind = AlertEvent.Kind.GONE if new == Alert.State.GONE else AlertEvent.Kind.RESOLVED
    counts["gone" if new == Alert.State.GONE else "resolved"] += 1
    alert.resolved_at = ctx.now
    told = alert.notified_at is not None
    if not alert.flapping and (told or (new == Alert.State.GONE and old != ev.FIRING)):
        alert.owes = kind  # dispatch clears notified_at once it is said
    alert.acknowledged_at = alert.acknowledged_by = None
    alert.ack_comment = ""
    events.append(event(alert, kind, ctx))
    if alert.pk:
        Silence.objects.filter(until_resolved=alert, ends_at__isnull=True).update(ends_at=ctx.now)


def _flapping(alerts: list[Alert], ctx: Context, events, counts) -> None:
    """Start and end flapping, Icinga-style: above 30 % of state changes in
    the last 21 evaluations it flaps, below 25 % it has settled."""
    if not alerts:
        return
    history = np.array([a.history for a in alerts], dtype=np.int64)
    ratio = flap_ratio(history)
    high, low = settings.ALERT_FLAP_HIGH_PERCENT / 100, settings.ALERT_FLAP_LOW_PERCENT / 100
    for alert, r in zip(alerts, ratio, strict=True):
        if not alert.flapping and r >= high:
            alert.flapping = True
            counts["flapping"] += 1
            alert.owes = "flapping"
            events.append(event(alert, AlertEvent.Kind.FLAPPING, ctx, f"{r:.0%} state changes"))
        elif alert.flapping and r < low:
            alert.flapping = False
            if alert.owes == "flapping":
                alert.owes = ""  # settled before anyone was told
            events.append(event(alert, AlertEvent.Kind.SETTLED, ctx))
            if alert.state != Alert.State.FIRING and alert.notified_at is not None:
                alert.owes = "resolved"
            # A fresh "firing" goes out if it settled while firing.
            alert.notified_at = None
