"""What the notification pages show: channels with their health, routes in
words, the delivery log and the deliveries that failed. Secrets never
leave here: errors and answers are shown through configure.redact(), and
a channel's secrets only as "set" / "not set". A constant number of
queries whatever the number of rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.paginator import Page, Paginator
from django.db.models import Count, Prefetch, QuerySet

from vigil.notify import configure
from vigil.notify.delivery import failed_deliveries
from vigil.notify.models import Attempt, Channel, Delivery, Route

DELIVERIES_PAGE_SIZE = 50
# Failed deliveries older than this no longer raise the banner: it warns of
# what is broken now, the delivery log keeps the rest.
FAILED_WINDOW = timedelta(days=7)


@dataclass
class ChannelRow:
    channel: Channel
    label: str
    secrets: dict[str, str]
    last_error: str
    # The last thing that happened was an error: the channel needs a look.
    failing: bool
    routes: int
    escalations: int


def channel_health(channel: Channel) -> bool:
    """True when the channel's most recent outcome was an error."""
    if not channel.last_error_at:
        return False
    return channel.last_success_at is None or channel.last_error_at >= channel.last_success_at


def channel_rows() -> list[ChannelRow]:
    """Every channel, by name, with its secrets as set / not set (one query)."""
    rows = []
    counted = Channel.objects.annotate(
        route_count=Count("routes", distinct=True),
        escalation_count=Count("escalations", distinct=True),
    )
    for channel in counted:
        rows.append(
            ChannelRow(
                channel=channel,
                label=configure.label_of(channel.kind),
                secrets=configure.secret_state(channel.kind, channel.secrets),
                last_error=configure.redact(channel.last_error, channel.secrets),
                failing=channel_health(channel),
                routes=channel.route_count,
                escalations=channel.escalation_count,
            )
        )
    return rows


def route_conditions(route: Route) -> str:
    """'rule CPU high, severity critical, tag db' or 'every notification'."""
    parts = []
    if route.rule_id:
        parts.append(f"rule {route.rule.name}")
    if route.severity:
        parts.append(f"severity {route.severity}")
    if route.location_id:
        parts.append(f"location {route.location.name}")
    if route.tag_id:
        parts.append(f"tag {route.tag.name}")
    if parts:
        return ", ".join(parts)
    return "when no other route matches" if route.is_default else "every notification"


def route_rows() -> list[Route]:
    """Every route with its conditions in words (three queries)."""
    routes = list(
        Route.objects.select_related("rule", "location", "tag").prefetch_related(
            "channels", "escalate_to"
        )
    )
    for route in routes:
        route.conditions = route_conditions(route)
    return routes


# --- Deliveries -------------------------------------------------------------------


def _shown(delivery: Delivery) -> Delivery:
    """The delivery with its error ready to show (secrets masked)."""
    delivery.error_shown = configure.redact(delivery.last_error, delivery.channel.secrets)
    return delivery


def deliveries() -> QuerySet[Delivery]:
    return Delivery.objects.select_related("channel", "notification").order_by("-created", "-id")


def delivery_page(page_number: str | int | None, status: str = "") -> Page:
    """One page of the delivery log, newest first (two queries)."""
    qs = deliveries()
    if status in Delivery.Status.values:
        qs = qs.filter(status=status)
    page = Paginator(qs, DELIVERIES_PAGE_SIZE).get_page(page_number)
    page.object_list = [_shown(d) for d in page.object_list]
    return page


def failed_count(now: datetime) -> int:
    """Notifications with a delivery that finally failed lately (tests aside)."""
    return (
        Delivery.objects.filter(failed_deliveries(), created__gte=now - FAILED_WINDOW)
        .values("notification_id")
        .distinct()
        .count()
    )


def delivery_detail(pk: int) -> Delivery | None:
    """A delivery with its attempts, errors and answers masked (two queries)."""
    delivery = (
        deliveries()
        .select_related("notification__rule")
        .prefetch_related(Prefetch("log", queryset=Attempt.objects.order_by("number", "id")))
        .filter(pk=pk)
        .first()
    )
    if delivery is None:
        return None
    secrets = delivery.channel.secrets
    delivery.attempts_shown = [
        (a, configure.redact(a.answer, secrets), configure.redact(a.error, secrets))
        for a in delivery.log.all()
    ]
    return _shown(delivery)


def outcome_of_test(outcome: str) -> str:
    """A test's outcome as told: one that would be retried has failed, since
    a test is a question asked now and is not retried."""
    return "failed" if outcome == "retry" else outcome


def shown_test(channel: Channel, delivery_pk: str | None) -> Delivery | None:
    """The test delivery a "Send test notification" click made, with its attempts."""
    if not delivery_pk or not delivery_pk.isdigit() or len(delivery_pk) > 18:
        return None
    delivery = delivery_detail(int(delivery_pk))
    if delivery is None or delivery.channel_id != channel.pk:
        return None
    if delivery.purpose != Delivery.Purpose.TEST:
        return None
    return delivery
