"""`vigil run` as a user starts it: its own agent's CPU reaches the query API."""

from __future__ import annotations

import base64
import socket
import stat
import time
from urllib.parse import urlencode

import orjson
import pytest

from vigil.testing import http_get, wait_for

pytestmark = pytest.mark.e2e


def query(vigil, **params) -> dict:
    auth = base64.b64encode(f"admin:{vigil.admin_password}".encode()).decode()
    url = f"{vigil.url}/api/v1/query?{urlencode(params)}"
    return orjson.loads(http_get(url, timeout=5, headers={"Authorization": f"Basic {auth}"})[1])


def test_the_local_agent_cpu_is_in_the_query_api_within_30_seconds(vigil_server):
    started = time.time()
    host = socket.gethostname()

    def cpu_points():
        now = int(time.time())
        body = query(
            vigil_server, metric="cpu_usage_percent", server=host, start=now - 600, end=now
        )
        return [p for s in body["series"] for p in s["points"]]

    points = wait_for(cpu_points, timeout=30, interval=0.5, what="this machine's CPU samples")
    assert time.time() - started < 30
    assert all(0 <= value <= 100 for _, value in points)


def test_the_admin_password_is_printed_once_and_kept_readable_only_by_its_owner(vigil_server):
    path = vigil_server.data_dir / "admin-password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    log = vigil_server.log()
    assert log.count(vigil_server.admin_password) == 1
    assert "Log in as user 'admin'" in log


def test_every_canonical_metric_of_the_local_agent_arrives(vigil_server):
    host = socket.gethostname()
    wanted = [
        "cpu_usage_percent",
        "memory_used_percent",
        "memory_available_bytes",
        "swap_used_percent",
        "filesystem_used_percent",
        "filesystem_free_bytes",
        "network_receive_bytes_per_second",
        "network_transmit_bytes_per_second",
        "load1",
        "load5",
        "load15",
        "up",
    ]

    def missing():
        now = int(time.time())
        gone = []
        for metric in wanted:
            body = query(vigil_server, metric=metric, server=host, start=now - 600, end=now)
            if not any(s["points"] for s in body["series"]):
                gone.append(metric)
        return gone

    wait_for(lambda: not missing(), timeout=40, interval=1, what=f"all of {wanted}")


def test_pages_and_apis_need_a_login(vigil_server):
    status, body = http_get(vigil_server.url + "/healthz")
    assert status == 200
    for path in ("/api/v1/query?metric=load1", "/api/v1/servers"):
        with pytest.raises(Exception, match="401"):
            http_get(vigil_server.url + path)


def test_its_own_address_works_whatever_the_allowed_hosts_say(tmp_path):
    from vigil.testing import VigilProcess, scratch_database

    with scratch_database() as database_url:
        vigil = VigilProcess(tmp_path / "data", database_url)
        vigil.env["VIGIL_ALLOWED_HOSTS"] = "vigil.example.com"
        vigil.env["VIGIL_LOCAL_AGENT_INTERVAL"] = "1"
        vigil.start()
        try:
            now = int(time.time())
            wait_for(
                lambda: query(
                    vigil, metric="load1", server=socket.gethostname(), start=now - 60, end=now + 60
                )["series"],
                timeout=20,
                what="the local agent's load through 127.0.0.1",
            )
        finally:
            vigil.stop()
