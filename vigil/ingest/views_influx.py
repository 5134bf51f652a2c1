"""InfluxDB 1.x endpoints: POST /write, /query and /ping, answered as InfluxDB answers.

Telegraf reads the answers InfluxDB's way: only 204 is a success; a 4xx with
a JSON body drops the batch; a 5xx, or an error whose body is not JSON, is
retried. So every error here has a JSON body `{"error": ...}`, and whatever
is temporary is a 503 with Retry-After (the shared flow decides that).
"""

from __future__ import annotations

import functools
import logging
import re

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from vigil.ingest.auth import authenticate
from vigil.ingest.canonical import telegraf
from vigil.ingest.handle import Outcome, ingest
from vigil.ingest.parsers import influx_line

log = logging.getLogger(__name__)

# Clients check the major version to choose between the 1.x and 2.x APIs.
INFLUX_VERSION = "1.8.10"
_MAX_QUERY_LENGTH = 10_000
_NOT_HEADER_SAFE = re.compile(r"[^\x20-\x7e]")
_ACCEPTED_STATEMENTS = ("CREATE DATABASE", "CREATE RETENTION POLICY", "ALTER RETENTION POLICY")


def _influx_headers(response: HttpResponse) -> HttpResponse:
    response["X-Influxdb-Version"] = INFLUX_VERSION
    response["X-Influxdb-Build"] = "OSS"
    return response


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> HttpResponse:
    response = JsonResponse({"error": message}, status=status)
    # InfluxDB repeats the error in a header; a header holds one line of ASCII.
    response["X-Influxdb-Error"] = _NOT_HEADER_SAFE.sub("?", message)[:1000]
    for name, value in (headers or {}).items():
        response[name] = value
    return _influx_headers(response)


def _unauthorized() -> HttpResponse:
    return _error(
        401,
        "authorization failed: a valid ingest token is required "
        "(basic auth or the p parameter with the token as password, or Authorization: Bearer)",
        {"WWW-Authenticate": 'Basic realm="Vigil ingest"'},
    )


def _render(outcome: Outcome) -> HttpResponse:
    if outcome.status == 204:
        return _influx_headers(HttpResponse(status=204))
    if outcome.status == 401:
        return _unauthorized()
    message = outcome.message
    if outcome.status == 400 and outcome.rejected:
        message = f"{message} (rejected {outcome.rejected}, wrote {outcome.written} points)"
    return _error(outcome.status, message, outcome.headers)


@login_not_required
@csrf_exempt
@require_POST
def write(request: HttpRequest) -> HttpResponse:
    """Line protocol; `db` and `rp` are accepted and ignored, `precision` is honoured."""
    precision = request.GET.get("precision", "ns")
    parse = functools.partial(influx_line.parse, precision=precision, counters=telegraf.COUNTERS)
    outcome = ingest(request, parse, telegraf.derive)
    return _render(outcome)


@login_not_required
@csrf_exempt
@require_http_methods(["GET", "HEAD"])
def ping(request: HttpRequest) -> HttpResponse:
    """Liveness as InfluxDB's /ping: no token needed, nothing about the data told."""
    if request.GET.get("verbose", "").lower() in ("true", "1"):
        return _influx_headers(JsonResponse({"version": INFLUX_VERSION}))
    return _influx_headers(HttpResponse(status=204))


@login_not_required
@csrf_exempt
@require_http_methods(["GET", "POST"])
def query(request: HttpRequest) -> HttpResponse:
    """Answers the statements agents send at start-up (CREATE DATABASE ...); no reads.

    Needs the ingest token, as InfluxDB with authentication on: a Telegraf
    with wrong credentials then says so at start-up, not only at first write.
    """
    try:
        token = authenticate(request)
    except OperationalError as exc:
        log.warning("influx query: database unavailable: %s", exc)
        return _error(503, "the database is unavailable; retry later", _retry_after())
    if token is None:
        return _unauthorized()
    try:
        q = request.POST.get("q") or request.GET.get("q") or ""
    except RequestDataTooBig:
        return _error(413, "request body is too large")
    except (SuspiciousOperation, MultiPartParserError) as exc:
        return _error(400, f"cannot read the form: {str(exc)[:200]}")
    if not q.strip():
        return _error(400, 'missing required parameter "q"')
    if len(q) > _MAX_QUERY_LENGTH:
        return _error(413, f"query is longer than {_MAX_QUERY_LENGTH} characters")
    results = []
    # A ';' inside a quoted name would split it: no agent names a database so.
    statements = [s.strip() for s in q.split(";") if s.strip()]
    for i, statement in enumerate(statements):
        results.append({"statement_id": i, **_answer(statement)})
    return _influx_headers(JsonResponse({"results": results}))


def _answer(statement: str) -> dict:
    words = " ".join(statement.split()[:3]).upper()
    if words.startswith(_ACCEPTED_STATEMENTS):
        # Vigil has one store: databases and retention policies need no creating.
        return {}
    if words.startswith("SHOW DATABASES"):
        return {"series": [{"name": "databases", "columns": ["name"]}]}
    return {"error": "Vigil accepts writes on /write only; read metrics with GET /api/v1/query"}


def _retry_after() -> dict[str, str]:
    return {"Retry-After": str(settings.INGEST_RETRY_AFTER_SECONDS)}
