"""Getting each queued notification to its channels: once, with retries,
and visibly.

1. `route_new`: every notification not yet routed gets one Delivery per
   channel its routes name (the default routes when none matches), plus
   scheduled escalations for firing notifications.
2. `deliver(pk)`: claim the delivery with a conditional update (two workers
   never both send it), send it through its channel's transport, log the
   attempt, then mark it sent, schedule a retry (exponential backoff with
   jitter, or the receiver's Retry-After) or fail it for good, handing it
   to the fallback channels so that no page vanishes.
3. `deliver_due`: deliver what is due, and take back claims of workers
   that died mid-send.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from vigil.alerts.models import Alert, Notification
from vigil.lib import stats
from vigil.notify.models import Attempt, Channel, Delivery, Route
from vigil.notify.transports import Message, Sent, TransportError, transport_for

log = logging.getLogger(__name__)

ACTIVE = [Delivery.Status.PENDING, Delivery.Status.RETRY, Delivery.Status.SCHEDULED]
DONE = [Delivery.Status.SENT, Delivery.Status.FAILED, Delivery.Status.CANCELLED]
# A claim older than this belongs to a worker that died mid-send.
STALE_CLAIM = timedelta(minutes=5)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


# --- Routing --------------------------------------------------------------------


def _places(notification: Notification) -> tuple[set[int], set[int]]:
    """Location and tag ids of the servers a notification is about."""
    locations = {notification.location_id} if notification.location_id else set()
    tags: set[int] = set()
    for alert in notification.alerts.all():
        server = alert.server
        if alert.location_id:
            locations.add(alert.location_id)
        if server is not None:
            if server.location_id:
                locations.add(server.location_id)
            tags.update(t.pk for t in server.tags.all())
    return locations, tags


def route_matches(route: Route, notification: Notification, places) -> bool:
    locations, tags = places
    if route.rule_id is not None and route.rule_id != notification.rule_id:
        return False
    if route.severity and route.severity != notification.severity:
        return False
    if route.location_id is not None and route.location_id not in locations:
        return False
    return route.tag_id is None or route.tag_id in tags


def routes_for(notification: Notification, routes: list[Route]) -> list[Route]:
    places = _places(notification)
    specific = [r for r in routes if not r.is_default and route_matches(r, notification, places)]
    return specific or [r for r in routes if r.is_default]


def route_new(now: datetime | None = None, limit: int = 500) -> list[int]:
    """Create the deliveries of unrouted notifications; returns their ids."""
    now = now or timezone.now()
    created: list[int] = []
    with transaction.atomic():
        batch = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(routed_at__isnull=True)
            .order_by("created", "id")
            .prefetch_related("alerts__server__tags")[:limit]
        )
        if not batch:
            return created
        routes = list(
            Route.objects.filter(enabled=True).prefetch_related("channels", "escalate_to")
        )
        for notification in batch:
            for delivery in _deliveries(notification, routes_for(notification, routes), now):
                try:
                    with transaction.atomic():
                        delivery.save()
                    created.append(delivery.pk)
                except IntegrityError:
                    pass  # two routes naming one channel: it hears once
            notification.routed_at = now
        Notification.objects.bulk_update(batch, ["routed_at"])
        done = [n.pk for n in batch if not n.deliveries.exclude(status__in=DONE).exists()]
        Notification.objects.filter(pk__in=done, delivered_at__isnull=True).update(delivered_at=now)
    return created


def _deliveries(notification: Notification, routes: list[Route], now: datetime):
    seen: set[int] = set()
    for route in routes:
        for channel in route.channels.all():
            if channel.enabled and channel.pk not in seen:
                seen.add(channel.pk)
                yield Delivery(notification=notification, channel=channel, next_attempt_at=now)
    if notification.kind != Notification.Kind.FIRING:
        return
    escalated: set[int] = set()
    for route in routes:
        if route.escalate_after_minutes <= 0:
            continue
        due = notification.created + timedelta(minutes=route.escalate_after_minutes)
        for channel in route.escalate_to.all():
            if channel.enabled and channel.pk not in escalated:
                escalated.add(channel.pk)
                yield Delivery(
                    notification=notification,
                    channel=channel,
                    purpose=Delivery.Purpose.ESCALATION,
                    status=Delivery.Status.SCHEDULED,
                    next_attempt_at=due,
                )


# --- Sending --------------------------------------------------------------------


def message_for(delivery: Delivery) -> Message:
    n = delivery.notification
    link = settings.BASE_URL.rstrip("/") + "/alerts/"
    if n is None:  # a test notification
        return Message(
            kind="test",
            title=f"Test notification from Vigil to {delivery.channel.name}",
            severity="info",
            rule="test",
            link=link,
            delivery_key=str(delivery.key),
            created=delivery.created.isoformat(),
        )
    kind = n.kind
    if delivery.purpose == Delivery.Purpose.ESCALATION:
        kind = Notification.Kind.REPEAT
    return Message(
        kind=kind,
        title=("Escalated: " if delivery.purpose == Delivery.Purpose.ESCALATION else "") + n.title,
        severity=n.severity,
        rule=n.rule.name,
        items=n.items,
        link=link,
        delivery_key=str(delivery.key),
        created=n.created.isoformat(),
    )


def backoff(attempt: int, retry_after: float | None = None) -> float:
    """Seconds before the next attempt: the receiver's Retry-After if it gave
    one, else exponential with jitter (half to all of base * 2^(n-1))."""
    cap = settings.NOTIFY_RETRY_MAX_SECONDS
    if retry_after is not None:
        return min(max(retry_after, 1.0), cap)
    ceiling = min(cap, settings.NOTIFY_RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def _settled(notification: Notification) -> bool:
    """An escalation is moot once every alert of it is acknowledged or over."""
    return not notification.alerts.filter(
        state=Alert.State.FIRING, acknowledged_at__isnull=True
    ).exists()


def deliver(pk: int, now: datetime | None = None) -> str:
    """Claim and send one delivery; returns its outcome (or "not claimed")."""
    now = now or timezone.now()
    claimed = Delivery.objects.filter(pk=pk, status__in=ACTIVE, next_attempt_at__lte=now).update(
        status=Delivery.Status.SENDING,
        claimed_at=now,
        claimed_by=worker_id(),
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return "not claimed"
    delivery = Delivery.objects.select_related("channel", "notification__rule").get(pk=pk)
    channel = delivery.channel
    notification = delivery.notification
    if delivery.purpose == Delivery.Purpose.ESCALATION and _settled(notification):
        _finish(delivery, Delivery.Status.CANCELLED, now, "acknowledged or resolved in time")
        return "cancelled"
    if not channel.enabled:
        _finish(delivery, Delivery.Status.CANCELLED, now, "the channel is disabled")
        return "cancelled"
    started = time.monotonic()
    try:
        transport = transport_for(channel.kind)(channel.config, channel.secrets)
        message = message_for(delivery)
        message.done = tuple(delivery.progress)
        sent = transport.notify(message)
        error = None
    except TransportError as exc:
        sent, error = Sent(exc.status, exc.answer), exc
        if exc.done:
            delivery.progress = [*delivery.progress, *exc.done]
            Delivery.objects.filter(pk=delivery.pk).update(progress=delivery.progress)
    except Exception as exc:  # a bug in a channel must not lose the page
        log.exception("channel %s failed unexpectedly", channel.name)
        sent, error = Sent(), TransportError(f"{type(exc).__name__}: {exc}")
    elapsed = int((time.monotonic() - started) * 1000)
    return _record(delivery, sent, error, elapsed, now)


def _record(delivery: Delivery, sent: Sent, error, elapsed: int, now: datetime) -> str:
    channel = delivery.channel
    if error is None:
        outcome = "sent"
    elif error.permanent or delivery.attempts >= settings.NOTIFY_MAX_ATTEMPTS:
        outcome = "failed"
    else:
        outcome = "retry"
    text = "" if error is None else str(error)
    with transaction.atomic():
        Attempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            at=now,
            duration_ms=elapsed,
            status_code=sent.status,
            answer=(sent.answer or "")[:2000],
            error=text[:2000],
            outcome=outcome,
        )
        if outcome == "sent":
            delivery.sent_at = now
            _finish(delivery, Delivery.Status.SENT, now, "")
            Channel.objects.filter(pk=channel.pk).update(last_success_at=now)
        else:
            Channel.objects.filter(pk=channel.pk).update(last_error=text[:2000], last_error_at=now)
        if outcome == "retry":
            wait = backoff(delivery.attempts, error.retry_after)
            Delivery.objects.filter(pk=delivery.pk).update(
                status=Delivery.Status.RETRY,
                next_attempt_at=now + timedelta(seconds=wait),
                last_error=text[:2000],
                claimed_at=None,
            )
        elif outcome == "failed":
            _finish(delivery, Delivery.Status.FAILED, now, text)
            _fall_back(delivery, now)
    stats.incr("vigil_notify_attempts_total", channel=channel.kind, outcome=outcome)
    return outcome


def _finish(delivery: Delivery, status: str, now: datetime, error: str) -> None:
    Delivery.objects.filter(pk=delivery.pk).update(
        status=status, sent_at=delivery.sent_at, last_error=error[:2000], claimed_at=None
    )
    n = delivery.notification_id
    if (
        n is not None
        and not Delivery.objects.filter(notification_id=n)
        .exclude(status__in=DONE)
        .exclude(pk=delivery.pk)
        .exists()
    ):
        Notification.objects.filter(pk=n, delivered_at__isnull=True).update(delivered_at=now)


def _fall_back(delivery: Delivery, now: datetime) -> None:
    """A notification that could not be delivered goes to the fallback channels."""
    if delivery.notification_id is None or delivery.purpose == Delivery.Purpose.FALLBACK:
        return
    for channel in Channel.objects.filter(is_fallback=True, enabled=True).exclude(
        pk=delivery.channel_id
    ):
        try:
            with transaction.atomic():
                Delivery.objects.create(
                    notification_id=delivery.notification_id,
                    channel=channel,
                    purpose=Delivery.Purpose.FALLBACK,
                    next_attempt_at=now,
                )
        except IntegrityError:
            pass  # another failed delivery of it already fell back here
    Notification.objects.filter(pk=delivery.notification_id).update(delivered_at=None)


def deliver_due(
    now: datetime | None = None, limit: int = 200, send: Callable[[int], object] | None = None
) -> dict[str, int]:
    """Route new notifications, take back stale claims and deliver what is
    due: here, or by handing each delivery id to `send` (a Celery task per
    delivery; the claim makes a delivery handed out twice go out once)."""
    now = now or timezone.now()
    counts: dict[str, int] = {"routed": len(route_new(now))}
    counts["reclaimed"] = Delivery.objects.filter(
        status=Delivery.Status.SENDING, claimed_at__lt=now - STALE_CLAIM
    ).update(status=Delivery.Status.RETRY, claimed_at=None)
    due = list(
        Delivery.objects.filter(status__in=ACTIVE, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in due:
        if send is not None:
            send(pk)
            counts["queued"] = counts.get("queued", 0) + 1
            continue
        outcome = deliver(pk, now)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def send_test(channel: Channel, now: datetime | None = None) -> tuple[str, Attempt | None]:
    """Send a test message through `channel` now, logged like any delivery."""
    now = now or timezone.now()
    delivery = Delivery.objects.create(
        channel=channel, purpose=Delivery.Purpose.TEST, next_attempt_at=now
    )
    outcome = deliver(delivery.pk, now)
    if outcome == "retry":
        # A test is a question asked now: no one waits for its retries.
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED)
    return outcome, Attempt.objects.filter(delivery=delivery).order_by("-number").first()


def failed_deliveries() -> Q:
    return Q(status=Delivery.Status.FAILED) & ~Q(purpose=Delivery.Purpose.TEST)
