"""The REST API: thin views over the query and server modules."""

from __future__ import annotations

import logging
import time

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from vigil.api import metrics
from vigil.api.auth import api_view
from vigil.lib.times import parse_time
from vigil.metrics import query
from vigil.servers.models import Server

log = logging.getLogger(__name__)

QUERY_PARAMS = {"metric", "server", "location", "start", "end", "max_points", "match"}
# Unix seconds of 9999-12-31: beyond it a time is a typo, and too big for SQL.
MAX_TIME = 253_402_300_799


def _bad_request(message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=400)


def _time(params, name: str, default: int) -> int:
    text = params.get(name, "").strip()
    if not text:
        return default
    try:
        value = parse_time(text)
    except (ValueError, OverflowError):
        raise query.QueryError(
            f"{name}: {text[:40]!r} is neither unix seconds nor an ISO 8601 time"
        ) from None
    if not 0 <= value <= MAX_TIME:
        raise query.QueryError(f"{name} must be between 0 and {MAX_TIME} (unix seconds)")
    return value


def _query_args(params) -> dict:
    """The arguments of query.run from the query string; QueryError names what is wrong."""
    if any("\x00" in v for key, values in params.lists() for v in (key, *values)):
        raise query.QueryError("parameters must not contain NUL characters")
    metric = params.get("metric", "").strip()
    if not metric:
        raise query.QueryError("metric is required, e.g. ?metric=cpu_usage_percent")
    end = _time(params, "end", int(time.time()))
    start = _time(params, "start", max(0, end - 3600))
    if start >= end:
        raise query.QueryError("start must be before end")
    try:
        max_points = int(params.get("max_points", "500"))
    except ValueError:
        raise query.QueryError(
            f"bad parameter: max_points {params.get('max_points', '')[:40]!r} is not a number"
        ) from None
    if not 1 <= max_points <= query.MAX_POINTS_LIMIT:
        raise query.QueryError(f"max_points must be between 1 and {query.MAX_POINTS_LIMIT}")
    servers = [s for s in params.getlist("server") if s]
    if len(servers) > query.MAX_SERIES:
        raise query.QueryError(f"at most {query.MAX_SERIES} server= parameters")
    matchers = [query.Matcher.parse(text) for text in params.getlist("match")]
    # Any other parameter is a shorthand for an equality matcher: mountpoint=/.
    for name in params:
        if name not in QUERY_PARAMS:
            matchers.append(query.Matcher.equal(name, params[name]))
    return {
        "metric": metric,
        "start": start,
        "end": end,
        "max_points": max_points,
        "servers": servers,
        "location": params.get("location") or None,
        "matchers": matchers,
    }


@api_view
@require_GET
def query_view(request: HttpRequest) -> HttpResponse:
    try:
        result = query.run(**_query_args(request.GET))
    except query.QueryError as exc:
        return _bad_request(str(exc))
    return HttpResponse(result.to_json(), content_type="application/json")


@api_view
@require_GET
def servers_view(request: HttpRequest) -> JsonResponse:
    servers = Server.objects.select_related("location").prefetch_related("tags")
    return JsonResponse(
        {
            "servers": [
                {
                    "id": s.pk,
                    "name": s.name,
                    "host_name": s.host_name,
                    "location": s.location.name if s.location else None,
                    "tags": [t.name for t in s.tags.all()],
                    "status": s.status,
                    "last_seen": s.last_seen.isoformat() if s.last_seen else None,
                }
                for s in servers
            ]
        }
    )


@api_view
@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Vigil's own metrics for Prometheus (with an API token or basic auth)."""
    return HttpResponse(metrics.render(), content_type="text/plain; version=0.0.4; charset=utf-8")


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        log.warning("healthz: database unavailable: %s", exc)
        return JsonResponse({"status": "error", "database": "unavailable"}, status=503)
    return JsonResponse({"status": "ok", "database": connection.vendor})
