"""POST /api/v1/ingest/collectd: collectd's write_http plugin with Format "JSON"."""

from __future__ import annotations

from functools import partial

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from vigil.ingest.canonical import collectd
from vigil.ingest.handle import ingest
from vigil.ingest.parsers import collectd_json
from vigil.ingest.parsers.base import ParseError
from vigil.ingest.views import render_json

_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@login_not_required
@csrf_exempt
@require_POST
def ingest_collectd(request: HttpRequest) -> HttpResponse:
    """`?store_rates=true` says that the Node has StoreRates on; without it the
    values tell (raw counters are integers)."""
    flag = request.GET.get("store_rates")
    store_rates = _FLAGS.get(flag.lower()) if flag is not None else None
    # The canonical mapping needs the intervals the parser reads.
    intervals: dict[tuple[str, str], float] = {}

    def parse(body: bytes, now: float) -> collectd_json.CollectdParseResult:
        # Checked here, after authentication, like everything a client sends.
        if flag is not None and store_rates is None:
            raise ParseError("store_rates must be true or false")
        result = collectd_json.parse(body, now, store_rates)
        intervals.update(result.intervals)
        return result

    return render_json(ingest(request, parse, partial(collectd.derive, intervals=intervals)))
