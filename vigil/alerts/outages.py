"""Location outages: when most servers of a location are down at once, one
alert for the location replaces a page per server.

The location alert runs the same state machine as any other, on a host-down
rule: it breaches while at least ALERT_LOCATION_OUTAGE_PERCENT of the
location's watched servers (and at least ALERT_LOCATION_OUTAGE_MIN_SERVERS)
are down, and must hold as long as the rule says. Dispatch suppresses the
per-server host-down alerts of a location whose outage is pending or firing.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import transaction

from vigil.alerts import evaluate as ev
from vigil.alerts import fetch
from vigil.alerts.engine import FLAP_MASK, Context, at, transition
from vigil.alerts.models import Alert, AlertEvent, Rule
from vigil.servers.models import Server


def evaluate_locations(rule: Rule, ctx: Context) -> dict[str, int]:
    """One evaluation of the location outages of a host-down rule."""
    scope = fetch.scope_server_ids(rule)
    watched = Server.objects.filter(pk__in=scope, location__isnull=False).exclude(
        status=Server.Status.NEW
    )
    total: Counter[int] = Counter()
    down: Counter[int] = Counter()
    for location_id, status in watched.values_list("location_id", "status"):
        total[location_id] += 1
        down[location_id] += status == Server.Status.DOWN
    counts = {"fired": 0, "resolved": 0, "flapping": 0, "gone": 0}
    with transaction.atomic():
        rows = {
            a.location_id: a
            for a in Alert.objects.select_for_update().filter(
                rule=rule, series__isnull=True, location__isnull=False
            )
        }
        locations = sorted(set(total) | set(rows))
        if not locations:
            return counts
        n_total = np.array([total[k] for k in locations], dtype=np.float64)
        n_down = np.array([down[k] for k in locations], dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(n_total > 0, n_down / n_total, 0.0)
        breaching = (n_total >= settings.ALERT_LOCATION_OUTAGE_MIN_SERVERS) & (
            share * 100 >= settings.ALERT_LOCATION_OUTAGE_PERCENT
        )
        states = ev.States.new(len(locations))
        for i, location_id in enumerate(locations):
            alert = rows.get(location_id)
            if alert is not None:
                states.code[i] = alert.state
                states.since[i] = alert.since.timestamp() if alert.since else np.nan
                states.streak[i] = alert.streak
        step = ev.step(states, breaching, None, ctx.ts, rule.for_seconds, rule.for_evaluations)
        events: list[AlertEvent] = []
        for i, location_id in enumerate(locations):
            new = int(step.states.code[i])
            alert = rows.get(location_id)
            if alert is None and new == ev.OK:
                continue
            if alert is None:
                alert = Alert(rule=rule, location_id=location_id, state=ev.OK)
            alert.value = float(n_down[i])
            alert.labels = {"down": f"{int(n_down[i])} of {int(n_total[i])}"}
            alert.streak = int(step.states.streak[i])
            since = step.states.since[i]
            alert.since = None if np.isnan(since) else at(since)
            transition(alert, alert.state, new, ctx, events, counts)
            alert.state = new
            alert.history = ((alert.history << 1) | (new == ev.FIRING)) & FLAP_MASK
            alert.save()
        for event in events:
            event.alert_id = event.alert.pk
        AlertEvent.objects.bulk_create(events)
    return counts


def locations_out(now: datetime) -> set[int]:
    """Locations whose outage alert is pending or firing, or resolved so
    recently that servers still booting there are not paged one by one:
    a server still down after the host-down rule's hold time pages alone."""
    from django.db.models import Q

    wait = settings.ALERT_GROUP_WAIT_SECONDS
    recent = Q()
    for rule_id, hold in Rule.objects.filter(kind=Rule.Kind.HOST_DOWN).values_list(
        "pk", "for_seconds"
    ):
        cutoff = now - timedelta(seconds=wait + hold)
        recent |= Q(rule_id=rule_id, state=Alert.State.OK, resolved_at__gte=cutoff)
    live = Q(state__in=[Alert.State.PENDING, Alert.State.FIRING])
    return set(
        Alert.objects.filter(series__isnull=True, location__isnull=False)
        .filter(live | recent if recent else live)
        .values_list("location_id", flat=True)
    )
