"""The notifications REST API: channels (with a test send), routes and the
delivery log. Thin views in the style of vigil.api.alerts (same
authentication, CSRF and error answers); the fields are read and written
by vigil.notify.serialize, which never answers a secret."""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse

from vigil.alerts.serialize import Invalid
from vigil.api.alerts import ApiError, answer, body, endpoint, found, invalid, page
from vigil.notify import serialize as ser
from vigil.notify.delivery import send_test
from vigil.notify.models import Attempt, Channel, Delivery, Route
from vigil.notify.overview import outcome_of_test

ID = re.compile(r"[0-9]{1,18}")


def _save(obj, what: str, lists: dict[str, list[int]] | None = None) -> None:
    try:
        with transaction.atomic():
            obj.save()
            for name, ids in (lists or {}).items():
                getattr(obj, name).set(ids)
    except IntegrityError as exc:
        raise ApiError(409, f"the {what} conflicts with another one: {exc}"[:500]) from None


# --- Channels ---------------------------------------------------------------------


@endpoint({"GET": "notify.view_channel", "POST": "notify.add_channel"})
def channels(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return answer({"channels": [ser.channel_dict(c) for c in Channel.objects.order_by("name")]})
    try:
        channel = ser.channel_from(body(request))
    except Invalid as exc:
        raise invalid(exc, "channel") from None
    _save(channel, "channel")
    return answer(ser.channel_dict(channel), 201)


@endpoint(
    {
        "GET": "notify.view_channel",
        "PUT": "notify.change_channel",
        "PATCH": "notify.change_channel",
        "DELETE": "notify.delete_channel",
    }
)
def channel_detail(request: HttpRequest, pk: int) -> HttpResponse:
    channel = found(Channel.objects.all(), pk, "channel")
    if request.method == "GET":
        return answer(ser.channel_dict(channel))
    if request.method == "DELETE":
        channel.delete()
        return HttpResponse(status=204)
    try:
        channel = ser.channel_from(body(request), channel, replace=request.method == "PUT")
    except Invalid as exc:
        raise invalid(exc, "channel") from None
    _save(channel, "channel")
    return answer(ser.channel_dict(channel))


@endpoint({"POST": "notify.change_channel"})
def channel_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Send a test notification now; answers how it went, whatever it was."""
    channel = found(Channel.objects.all(), pk, "channel")
    outcome, attempt = send_test(channel)
    delivery = _delivery(attempt.delivery_id if attempt else None)
    return answer({"outcome": outcome_of_test(outcome), "delivery": delivery})


def _delivery(pk: int | None) -> dict | None:
    if pk is None:
        return None
    found_ = _deliveries().filter(pk=pk).first()
    return ser.delivery_detail_dict(found_) if found_ else None


# --- Routes -----------------------------------------------------------------------


def _routes() -> QuerySet[Route]:
    return Route.objects.prefetch_related("channels", "escalate_to").order_by("name")


@endpoint({"GET": "notify.view_route", "POST": "notify.add_route"})
def routes(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return answer({"routes": [ser.route_dict(r) for r in _routes()]})
    try:
        route, lists = ser.route_from(body(request))
    except Invalid as exc:
        raise invalid(exc, "route") from None
    _save(route, "route", lists)
    return answer(ser.route_dict(found(_routes(), route.pk, "route")), 201)


@endpoint(
    {
        "GET": "notify.view_route",
        "PUT": "notify.change_route",
        "PATCH": "notify.change_route",
        "DELETE": "notify.delete_route",
    }
)
def route_detail(request: HttpRequest, pk: int) -> HttpResponse:
    route = found(_routes(), pk, "route")
    if request.method == "GET":
        return answer(ser.route_dict(route))
    if request.method == "DELETE":
        route.delete()
        return HttpResponse(status=204)
    try:
        route, lists = ser.route_from(body(request), route, replace=request.method == "PUT")
    except Invalid as exc:
        raise invalid(exc, "route") from None
    _save(route, "route", lists)
    return answer(ser.route_dict(found(_routes(), pk, "route")))


# --- Deliveries -------------------------------------------------------------------


def _deliveries() -> QuerySet[Delivery]:
    return (
        Delivery.objects.select_related("channel", "notification")
        .prefetch_related(Prefetch("log", queryset=Attempt.objects.order_by("number", "id")))
        .order_by("-created", "-id")
    )


@endpoint({"GET": "notify.view_delivery"})
def deliveries(request: HttpRequest) -> HttpResponse:
    """The delivery log, newest first (?status=, ?channel=<id or name>,
    ?purpose=, ?notification=<id>)."""
    qs = Delivery.objects.select_related("channel", "notification").order_by("-created", "-id")
    status = request.GET.get("status")
    if status is not None:
        if status not in Delivery.Status.values:
            raise ApiError(400, f"status must be one of {', '.join(Delivery.Status.values)}")
        qs = qs.filter(status=status)
    purpose = request.GET.get("purpose")
    if purpose is not None:
        if purpose not in Delivery.Purpose.values:
            raise ApiError(400, f"purpose must be one of {', '.join(Delivery.Purpose.values)}")
        qs = qs.filter(purpose=purpose)
    if "channel" in request.GET:
        channel = request.GET["channel"]
        qs = (
            qs.filter(channel_id=int(channel))
            if ID.fullmatch(channel)
            else qs.filter(channel__name=channel)
        )
    if "notification" in request.GET:
        notification = request.GET["notification"]
        if not ID.fullmatch(notification):
            raise ApiError(400, "notification must be a notification's id")
        qs = qs.filter(notification_id=int(notification))
    return page(request, qs, "deliveries", ser.delivery_dict)


@endpoint({"GET": "notify.view_delivery"})
def delivery_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return answer(ser.delivery_detail_dict(found(_deliveries(), pk, "delivery")))
