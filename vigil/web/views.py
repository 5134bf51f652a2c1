"""Pages: the server list and a server's live charts."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from vigil.alerts.overview import server_alerts
from vigil.servers.models import Server
from vigil.servers.overview import grouped_by_location, server_rows

RANGES = [
    ("1h", 3600),
    ("6h", 6 * 3600),
    ("24h", 24 * 3600),
    ("7d", 7 * 86400),
    ("30d", 30 * 86400),
]


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "web/home.html", {"groups": grouped_by_location()})


def server_list_fragment(request: HttpRequest) -> HttpResponse:
    return render(request, "web/_server_list.html", {"groups": grouped_by_location()})


def server_detail(request: HttpRequest, pk: int) -> HttpResponse:
    server = get_object_or_404(Server.objects.select_related("location"), pk=pk)
    (row,) = server_rows([server])
    context = {"server": server, "row": row, "ranges": RANGES, "alerts": server_alerts(server)}
    return render(request, "web/server.html", context)
