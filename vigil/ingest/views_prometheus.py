"""`POST /api/v1/ingest/prometheus`: Prometheus text format pushed by scripts.

    curl --data-binary @metrics.txt -H "Authorization: Bearer $TOKEN" \\
        "https://vigil.example.com/api/v1/ingest/prometheus?host=web-1"

A token bound to a server writes for that server; a registering token needs
the `host` query parameter. Answers as the JSON ingest endpoint does.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from vigil.ingest.canonical import node_exporter
from vigil.ingest.handle import ingest
from vigil.ingest.parsers import prometheus_text
from vigil.ingest.parsers.base import ParseError, ParseResult, check_host
from vigil.ingest.views import render_json


def _parser_for(host: str | None):
    def parse(body: bytes, now: float) -> ParseResult:
        if host is not None:
            try:
                check_host(host)
            except ValueError as exc:
                raise ParseError(f"the host query parameter: {exc}") from None
        result = prometheus_text.parse(body, now)
        for sp in result.series:
            sp.host = host
        if result.non_finite:
            # Skipped, not stored: say so, as no sample is dropped silently.
            result.reject(
                f"line {result.first_non_finite_line}: {result.non_finite} NaN/Inf samples "
                f"skipped (Vigil stores finite values only)",
                result.non_finite,
            )
        return result

    return parse


@login_not_required
@csrf_exempt
@require_POST
def ingest_prometheus(request: HttpRequest) -> HttpResponse:
    host = request.GET.get("host") or None
    return render_json(ingest(request, _parser_for(host), node_exporter.derive))
