"""Ingest endpoints: thin views that run the shared flow with their parser."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from vigil.ingest.handle import Outcome, ingest
from vigil.ingest.parsers import vigil_json


def render_json(outcome: Outcome) -> HttpResponse:
    """An Outcome as JSON: 204 empty, errors as {"error": ...}, partial writes with counts."""
    if outcome.status == 204:
        response = HttpResponse(status=204)
    else:
        body: dict = {"error": outcome.message}
        if outcome.status == 400 and (outcome.written or outcome.rejected):
            body.update(written=outcome.written, rejected=outcome.rejected, errors=outcome.errors)
        response = JsonResponse(body, status=outcome.status)
    for name, value in outcome.headers.items():
        response[name] = value
    return response


@login_not_required
@csrf_exempt
@require_POST
def ingest_json(request: HttpRequest) -> HttpResponse:
    return render_json(ingest(request, vigil_json.parse))
