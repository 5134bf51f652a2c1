"""The alerts REST API: rules (with a backtest), alerts, silences and the
notification queue. Thin views: parse, authorize, call, answer JSON; the
fields are read and written by vigil.alerts.serialize.

Reads need a login (session, API token or basic auth); writes also need the
model permission of the user (alerts.add_rule, ...). A session-authenticated
write must carry the CSRF token, as a form would; token and basic auth need
none (no browser sends them on its own)."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps

import orjson
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from vigil.alerts import backtest, dispatch
from vigil.alerts import serialize as ser
from vigil.alerts.models import Alert, Notification, Rule, Silence
from vigil.alerts.overview import expire
from vigil.api.auth import api_view

MAX_BODY = 256 * 1024
PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
SAFE = ("GET", "HEAD", "OPTIONS")
LIVE = (Alert.State.PENDING, Alert.State.FIRING)
MUTED = Q(silenced=True) | ~Q(suppressed="")
# The sections of the alerts page, as filters.
ALERT_FILTERS = {
    "live": Q(state__in=LIVE),
    "firing": Q(state=Alert.State.FIRING, acknowledged_at__isnull=True) & ~MUTED,
    "pending": Q(state=Alert.State.PENDING) & ~MUTED,
    "acknowledged": Q(state=Alert.State.FIRING, acknowledged_at__isnull=False) & ~MUTED,
    "silenced": Q(state__in=LIVE) & MUTED,
    "all": Q(),
}


class ApiError(Exception):
    def __init__(self, status: int, message: str, fields: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.fields = status, message, fields


def answer(data: object, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(data), status=status, content_type="application/json")


class _Csrf(CsrfViewMiddleware):
    def _reject(self, request, reason):
        return reason


def _csrf_failure(request: HttpRequest) -> str | None:
    """Why a session-authenticated write fails Django's CSRF check, or None."""
    check = _Csrf(lambda r: None)
    check.process_request(request)
    return check.process_view(request, None, (), {})


def endpoint(methods: dict[str, str | None]) -> Callable:
    """A JSON endpoint: `methods` maps each allowed HTTP method to the
    permission it needs (None: a login is enough). Errors answer
    {"error": ...} (with "fields" for validation) and a 4xx status."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def checked(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method not in methods:
                response = answer({"error": f"method {request.method} not allowed"}, 405)
                response["Allow"] = ", ".join(methods)
                return response
            needed = methods[request.method]
            if needed and not request.user.has_perm(needed):
                return answer({"error": f"permission denied: this needs {needed}"}, 403)
            try:
                return view(request, *args, **kwargs)
            except ApiError as exc:
                body = {"error": exc.message}
                if exc.fields:
                    body["fields"] = exc.fields
                return answer(body, exc.status)

        authenticated = api_view(checked)

        # api_view answers 401 itself: no login redirect, and no CSRF cookie
        # asked of token clients (a session is checked below).
        @login_not_required
        @csrf_exempt
        @never_cache
        @wraps(view)
        def entry(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if any("\x00" in k or "\x00" in v for k, v in request.GET.items()):
                return answer({"error": "parameters must not contain NUL characters"}, 400)
            # A browser session must prove the write comes from our pages.
            if request.user.is_authenticated and request.method not in SAFE:
                reason = _csrf_failure(request)
                if reason:
                    return answer({"error": f"CSRF check failed: {reason}"}, 403)
            return authenticated(request, *args, **kwargs)

        return entry

    return decorate


def body(request: HttpRequest) -> object:
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ApiError(413, f"the body is larger than {MAX_BODY // 1024} KiB") from None
    if len(raw) > MAX_BODY:
        raise ApiError(413, f"the body is larger than {MAX_BODY // 1024} KiB")
    try:
        return orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None


def invalid(exc: ser.Invalid, what: str) -> ApiError:
    return ApiError(400, f"invalid {what}: {exc}"[:2000], exc.fields)


def found(qs: QuerySet, pk: int, what: str):
    obj = qs.filter(pk=pk).first()
    if obj is None:
        raise ApiError(404, f"no {what} with id {pk}")
    return obj


def page(request: HttpRequest, qs: QuerySet, key: str, serialize: Callable) -> HttpResponse:
    """One page of `qs`: ?page=1&per_page=100 (at most 500), two queries."""
    try:
        number = int(request.GET.get("page", "1"))
        size = int(request.GET.get("per_page", str(PAGE_SIZE)))
    except ValueError:
        raise ApiError(400, "page and per_page must be whole numbers") from None
    if not 1 <= size <= MAX_PAGE_SIZE or number < 1:
        raise ApiError(400, f"page must be 1 or more, per_page from 1 to {MAX_PAGE_SIZE}")
    paginator = Paginator(qs, size)
    if number > max(paginator.num_pages, 1):
        raise ApiError(404, f"no page {number}: there are {paginator.num_pages}")
    items = paginator.page(number).object_list
    return answer(
        {
            "count": paginator.count,
            "page": number,
            "pages": paginator.num_pages,
            key: [serialize(x) for x in items],
        }
    )


def _save(obj, what: str) -> None:
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError as exc:
        raise ApiError(409, f"the {what} conflicts with another one: {exc}"[:500]) from None


# --- Rules --------------------------------------------------------------------


@endpoint({"GET": None, "POST": "alerts.add_rule"})
def rules(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return answer({"rules": [ser.rule_dict(r) for r in Rule.objects.order_by("name")]})
    try:
        rule = ser.rule_from(body(request))
    except ser.Invalid as exc:
        raise invalid(exc, "rule") from None
    _save(rule, "rule")
    return answer(ser.rule_dict(rule), 201)


@endpoint(
    {
        "GET": None,
        "PUT": "alerts.change_rule",
        "PATCH": "alerts.change_rule",
        "DELETE": "alerts.delete_rule",
    }
)
def rule_detail(request: HttpRequest, pk: int) -> HttpResponse:
    rule = found(Rule.objects.all(), pk, "rule")
    if request.method == "GET":
        return answer(ser.rule_dict(rule))
    if request.method == "DELETE":
        rule.delete()
        return HttpResponse(status=204)
    try:
        rule = ser.rule_from(body(request), rule, replace=request.method == "PUT")
    except ser.Invalid as exc:
        raise invalid(exc, "rule") from None
    _save(rule, "rule")
    return answer(ser.rule_dict(rule))


@endpoint({"POST": "alerts.add_rule"})
def rule_backtest(request: HttpRequest) -> HttpResponse:
    """How often an unsaved rule would have fired over the last days."""
    try:
        rule, days = ser.backtest_rule_from(body(request))
    except ser.Invalid as exc:
        raise invalid(exc, "rule") from None
    try:
        result = backtest.backtest(rule, days=days)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return answer(result.as_dict())


# --- Alerts -------------------------------------------------------------------


def _alerts() -> QuerySet[Alert]:
    return Alert.objects.select_related(
        "rule", "server__location", "location", "acknowledged_by"
    ).order_by("-changed_at", "-id")


@endpoint({"GET": None})
def alerts(request: HttpRequest) -> HttpResponse:
    """Live alerts (?state=firing|pending|acknowledged|silenced|live|all,
    ?server=<name>, ?rule=<id>)."""
    state = request.GET.get("state", "live")
    if state not in ALERT_FILTERS:
        raise ApiError(400, f"state must be one of {', '.join(ALERT_FILTERS)}")
    qs = _alerts().filter(ALERT_FILTERS[state])
    if "server" in request.GET:
        qs = qs.filter(server__name=request.GET["server"])
    if "rule" in request.GET:
        rule = request.GET["rule"]
        if not re.fullmatch(r"[0-9]{1,18}", rule) or int(rule) == 0:
            raise ApiError(400, "rule must be a rule's id")
        qs = qs.filter(rule_id=int(rule))
    return page(request, qs, "alerts", ser.alert_dict)


@endpoint({"GET": None})
def alert_detail(request: HttpRequest, pk: int) -> HttpResponse:
    alert = found(_alerts(), pk, "alert")
    events = alert.events.order_by("-at", "-id")[:500]
    return answer({**ser.alert_dict(alert), "events": [ser.event_dict(e) for e in events]})


@endpoint({"POST": "alerts.change_alert"})
def alert_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    alert = found(_alerts(), pk, "alert")
    try:
        comment = ser.comment_from(body(request))
    except ser.Invalid as exc:
        raise invalid(exc, "acknowledgement") from None
    if not dispatch.acknowledge(alert, request.user, comment, timezone.now()):
        raise ApiError(409, "only a firing alert that nobody acknowledged yet can be acknowledged")
    return answer(ser.alert_dict(found(_alerts(), pk, "alert")))


# --- Silences -----------------------------------------------------------------


@endpoint({"GET": None, "POST": "alerts.add_silence"})
def silences(request: HttpRequest) -> HttpResponse:
    """Current and upcoming silences; ?expired=1 for the ended ones too."""
    if request.method == "POST":
        try:
            silence = ser.silence_from(body(request), request.user)
        except ser.Invalid as exc:
            raise invalid(exc, "silence") from None
        _save(silence, "silence")
        dispatch.refresh_marks(timezone.now())
        return answer(ser.silence_dict(silence, timezone.now()), 201)
    now = timezone.now()
    qs = Silence.objects.select_related("created_by").order_by("-starts_at", "-id")
    if request.GET.get("expired") not in ("1", "true"):
        qs = qs.filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
    return page(request, qs, "silences", lambda s: ser.silence_dict(s, now))


@endpoint({"GET": None, "DELETE": "alerts.delete_silence"})
def silence_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """DELETE expires the silence (ends it now) and keeps it for the record."""
    silence = found(Silence.objects.select_related("created_by"), pk, "silence")
    now = timezone.now()
    if request.method == "DELETE":
        expire(silence, now)
    return answer(ser.silence_dict(silence, now))


# --- Notifications ------------------------------------------------------------


@endpoint({"GET": None})
def notifications(request: HttpRequest) -> HttpResponse:
    """The notification queue, newest first."""
    qs = (
        Notification.objects.select_related("rule", "location")
        .prefetch_related("alerts")
        .order_by("-created", "-id")
    )
    return page(request, qs, "notifications", ser.notification_dict)
