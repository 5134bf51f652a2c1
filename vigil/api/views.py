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

QUERY_PARAMS = {"metric", "server", "location", "start", "end", "max_points"}


def _bad_request(message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=400)


@api_view
@require_GET
def query_view(request: HttpRequest) -> JsonResponse:
    params = request.GET
    metric = params.get("metric", "").strip()
    if not metric:
        return _bad_request("metric is required, e.g. ?metric=cpu_usage_percent")
    try:
        end = parse_time(params["end"]) if params.get("end") else int(time.time())
        start = parse_time(params["start"]) if params.get("start") else end - 3600
        max_points = int(params.get("max_points", 500))
    except ValueError as exc:
        return _bad_request(f"bad parameter: {exc}")
    if start >= end:
        return _bad_request("start must be before end")
    if not 1 <= max_points <= query.MAX_POINTS_LIMIT:
        return _bad_request(f"max_points must be between 1 and {query.MAX_POINTS_LIMIT}")
    labels = {k: v for k, v in params.items() if k not in QUERY_PARAMS}
    bad = [k for k in labels if not k.isidentifier()]
    if bad:
        return _bad_request(f"{bad[0][:40]!r} is not a label name")
    result = query.run(
        metric,
        start,
        end,
        max_points,
        servers=params.getlist("server") or None,
        location=params.get("location") or None,
        labels=labels,
    )
    return JsonResponse(result.as_dict())


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
