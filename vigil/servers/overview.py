"""The server list: every server with its current CPU, memory and disk use.

Two queries whatever the number of servers: the servers, and the newest value
of their headline series (kept on Series by the writer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby

from django.utils import timezone

from vigil.metrics.models import Series
from vigil.servers.models import Server

HEADLINE_METRICS = ("cpu_usage_percent", "memory_used_percent", "filesystem_used_percent")


@dataclass
class ServerRow:
    server: Server
    status: str
    cpu: float | None = None
    memory: float | None = None
    disk: float | None = None  # the fullest file system


@dataclass
class LocationGroup:
    name: str
    rows: list[ServerRow] = field(default_factory=list)


def display_status(server: Server, now) -> str:
    if server.status == Server.Status.UP and server.is_overdue(now):
        return Server.Status.DOWN
    return server.status


def server_rows(servers: list[Server] | None = None) -> list[ServerRow]:
    now = timezone.now()
    if servers is None:
        servers = list(Server.objects.select_related("location"))
    rows = {s.pk: ServerRow(s, display_status(s, now)) for s in servers}
    series = Series.objects.filter(
        server_id__in=list(rows), metric__in=HEADLINE_METRICS, last_value__isnull=False
    ).values_list("server_id", "metric", "last_value")
    for server_id, metric, value in series:
        row = rows[server_id]
        if metric == "cpu_usage_percent":
            row.cpu = value
        elif metric == "memory_used_percent":
            row.memory = value
        else:
            row.disk = value if row.disk is None else max(row.disk, value)
    return list(rows.values())


def grouped_by_location() -> list[LocationGroup]:
    """Rows grouped by location name; servers without a location come last."""
    rows = server_rows()
    rows.sort(key=lambda r: (r.server.location is None, _location_name(r), r.server.name))
    return [LocationGroup(name, list(group)) for name, group in groupby(rows, _location_name)]


def _location_name(row: ServerRow) -> str:
    return row.server.location.name if row.server.location else "No location"
