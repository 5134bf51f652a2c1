"""What the alert pages show: live alerts sorted into sections, their history,
the silences by state and each rule's scope in words. A constant number of
queries whatever the number of alerts: rows are fetched in bulk and sorted
here."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.core.paginator import Page, Paginator
from django.db.models import Count, Q, QuerySet

from vigil.alerts.dispatch import active_silences, item, refresh_marks, silence_matches
from vigil.alerts.models import Alert, AlertEvent, Rule, Silence
from vigil.servers.models import Server

SECTIONS = [
    ("firing", "Firing"),
    ("pending", "Pending"),
    ("acknowledged", "Acknowledged"),
    ("silenced", "Silenced"),
]
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
HISTORY_PAGE_SIZE = 50
EXPIRED_SILENCES_SHOWN = 50
LIVE = (Alert.State.PENDING, Alert.State.FIRING)


@dataclass
class AlertRow:
    """One live alert as the page shows it."""

    alert: Alert
    section: str
    description: str = ""
    # Why no one is told: the silences that mute it, or the suppression reason.
    silences: list[Silence] = field(default_factory=list)

    @property
    def rule(self) -> Rule:
        return self.alert.rule


def section_of(alert: Alert) -> str:
    """Muted alerts are set apart first: they need no one, whatever their state."""
    if alert.silenced or alert.suppressed:
        return "silenced"
    if alert.state == Alert.State.PENDING:
        return "pending"
    if alert.acknowledged_at is not None:
        return "acknowledged"
    return "firing"


def _live_queryset() -> QuerySet[Alert]:
    return Alert.objects.filter(state__in=LIVE).select_related(
        "rule", "server__location", "location", "acknowledged_by"
    )


def _tags_of(server_ids: set[int]) -> dict[int, set[int]]:
    out: dict[int, set[int]] = defaultdict(set)
    for server_id, tag_id in Server.tags.through.objects.filter(
        server_id__in=server_ids
    ).values_list("server_id", "tag_id"):
        out[server_id].add(tag_id)
    return out


def _sort_key(row: AlertRow) -> tuple:
    moment = row.alert.fired_at or row.alert.since or row.alert.changed_at
    return (SEVERITY_ORDER.get(row.alert.rule.severity, 9), -moment.timestamp(), row.alert.pk)


def live_alerts(now: datetime) -> dict[str, list[AlertRow]]:
    """Pending and firing alerts by section (firing, pending, acknowledged,
    silenced), most severe and most recent first. Three queries at most:
    the alerts, the active silences, and the tags of muted alerts' servers
    when a silence matches by tag."""
    rows = [AlertRow(a, section_of(a)) for a in _live_queryset()]
    muted = [r for r in rows if r.section == "silenced" and r.alert.silenced]
    if muted:
        silences = active_silences(now)
        tags = (
            _tags_of({r.alert.server_id for r in muted if r.alert.server_id})
            if any(s.tag_id for s in silences)
            else {}
        )
        for row in muted:
            server_tags = tags.get(row.alert.server_id, set())
            row.silences = [s for s in silences if silence_matches(s, row.alert, server_tags)]
    sections: dict[str, list[AlertRow]] = {key: [] for key, _ in SECTIONS}
    for row in rows:
        row.description = item(row.alert)["description"]
        sections[row.section].append(row)
    for section in sections.values():
        section.sort(key=_sort_key)
    return sections


def firing_count() -> int:
    """Firing alerts that need someone: the count in the site navigation."""
    return Alert.objects.filter(
        state=Alert.State.FIRING, silenced=False, suppressed="", acknowledged_at__isnull=True
    ).count()


def server_alerts(server: Server) -> list[Alert]:
    """The server's pending and firing alerts, firing first."""
    alerts = list(
        Alert.objects.filter(server=server, state__in=LIVE).select_related(
            "rule", "acknowledged_by"
        )
    )
    alerts.sort(
        key=lambda a: (
            -a.state,
            SEVERITY_ORDER.get(a.rule.severity, 9),
            a.rule.name,
            sorted(a.labels.items()),
        )
    )
    return alerts


def history(page_number: str | int | None) -> Page:
    """Alert events, newest first, one page of them (two queries)."""
    events = AlertEvent.objects.select_related("rule", "server", "alert__location").order_by(
        "-at", "-id"
    )
    return Paginator(events, HISTORY_PAGE_SIZE).get_page(page_number)


# Silences


def silence_state(silence: Silence, now: datetime) -> str:
    if silence.ends_at is not None and silence.ends_at <= now:
        return "expired"
    if silence.starts_at > now:
        return "upcoming"
    return "active"


def silences_by_state(now: datetime) -> dict[str, list[Silence]]:
    """Active (started, not ended; a weekly one may be between windows),
    upcoming, and the most recently expired. Two queries."""
    related = (
        "server",
        "location",
        "tag",
        "rule",
        "until_resolved__rule",
        "until_resolved__server",
        "until_resolved__location",
        "created_by",
    )
    current = Silence.objects.filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
    out: dict[str, list[Silence]] = {"active": [], "upcoming": [], "expired": []}
    for silence in current.select_related(*related).order_by("starts_at", "pk"):
        silence.open_now = silence.is_active(now)
        out[silence_state(silence, now)].append(silence)
    out["expired"] = list(
        Silence.objects.filter(ends_at__lte=now)
        .select_related(*related)
        .order_by("-ends_at", "-pk")[:EXPIRED_SILENCES_SHOWN]
    )
    return out


def expire(silence: Silence, now: datetime) -> bool:
    """End a silence now; an upcoming one never starts. False if already over.
    Alerts it muted are told about at the next dispatch, if still firing."""
    if silence.ends_at is not None and silence.ends_at <= now:
        return False
    silence.starts_at = min(silence.starts_at, now)
    silence.ends_at = now
    silence.save(update_fields=["starts_at", "ends_at"])
    refresh_marks(now)
    return True


def silence_defaults(alert: Alert) -> dict[str, object]:
    """A new silence's fields prefilled from the alert it was opened from:
    its rule, its server (or location) and its labels as matchers. A label
    whose value the matcher syntax cannot hold (a comma, a new line) is
    left out; the silence still names the alert itself."""
    matchers = [
        f"{name}={value}"
        for name, value in sorted(alert.labels.items())
        if not any(c in value for c in ",\n\r") and value.strip() == value
    ]
    return {
        "rule": alert.rule_id,
        "server": alert.server_id,
        "location": alert.location_id if not alert.series_id else None,
        "matchers": "\n".join(matchers),
        "comment": f"{alert.rule.name} on {alert.subject}"[:500],
    }


# Rules


def scope_text(rule: Rule) -> str:
    """'all servers', 'location Paris', 'tag web', 'group db', 'server web-1'."""
    target = {
        Rule.Scope.LOCATION: rule.location,
        Rule.Scope.TAG: rule.tag,
        Rule.Scope.GROUP: rule.group,
        Rule.Scope.SERVER: rule.server,
    }.get(rule.scope)
    if rule.scope == Rule.Scope.ALL or target is None:
        return "all servers"
    return f"{rule.scope} {target}"


def rule_rows() -> list[Rule]:
    """Every rule with its scope in words and its count of firing alerts (one query)."""
    rules = list(
        Rule.objects.select_related("location", "tag", "group", "server").annotate(
            firing=Count("alerts", filter=Q(alerts__state=Alert.State.FIRING))
        )
    )
    for rule in rules:
        rule.scope_text = scope_text(rule)
    return rules


def backtest_summary(result, days: int) -> str:
    """One sentence on a backtest (vigil.alerts.backtest.BacktestResult)."""
    series = f"{result.series} series evaluated every {result.step} s"
    if not result.fired:
        return f"Over the last {days} days this rule would not have fired ({series})."
    servers = sorted({episode.server for episode in result.episodes})
    named = ", ".join(servers[:5])
    if len(servers) > 5:
        named += f" and {len(servers) - 5} more"
    times = "time" if result.fired == 1 else "times"
    return (
        f"Over the last {days} days this rule would have fired {result.fired} {times}, "
        f"on {named} ({series})."
    )
