"""Debian's real node_exporter scraped by a real `vigil run`, then stopped."""

from __future__ import annotations

import base64
import os
import subprocess
import time
from urllib.parse import urlencode

import orjson
import pytest

from vigil.testing import VigilProcess, free_port, http_get, scratch_database, wait_for

pytestmark = pytest.mark.e2e
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
SERVER = "node-e2e"


@pytest.fixture
def node_exporter(tmp_path):
    if not os.path.exists(NODE_EXPORTER):
        pytest.fail(f"{NODE_EXPORTER} is missing: apt-get install prometheus-node-exporter")
    port = free_port()
    log = open(tmp_path / "node_exporter.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}",
         # systemd needs D-Bus and logs an error on every scrape without it.
         "--no-collector.systemd"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/metrics"

    def answers() -> bool:
        try:
            return http_get(url, timeout=1)[0] == 200
        except OSError:
            return False

    try:
        wait_for(answers, 10, 0.1, "node_exporter to answer")
        yield proc, url
    finally:
        proc.kill()
        proc.wait()
        log.close()


def query(vigil: VigilProcess, metric: str, since: int) -> list[tuple[dict, list]]:
    auth = base64.b64encode(f"admin:{vigil.admin_password}".encode()).decode()
    params = {"metric": metric, "server": SERVER, "start": since, "end": int(time.time()) + 5}
    url = f"{vigil.url}/api/v1/query?{urlencode(params)}"
    body = orjson.loads(http_get(url, timeout=5, headers={"Authorization": f"Basic {auth}"})[1])
    return [(s["labels"], s["points"]) for s in body["series"]]


def test_vigil_scrapes_node_exporter_and_notices_when_it_stops(tmp_path, node_exporter):
    exporter, url = node_exporter
    started = int(time.time()) - 1
    with scratch_database() as database_url:
        vigil = VigilProcess(tmp_path / "data", database_url, "--no-local-agent")
        vigil.env["VIGIL_SCRAPE_ALLOWED_NETWORKS"] = "127.0.0.1/32"
        vigil.env["VIGIL_SCRAPE_TICK_SECONDS"] = "0.5"
        vigil.start()
        try:
            vigil.vigil("scrape", "add", "--server", SERVER, "--url", url, "--interval", "1")

            def canonical() -> dict[str, list] | None:
                wanted = ("cpu_usage_percent", "memory_used_percent", "memory_available_bytes",
                          "filesystem_used_percent", "filesystem_free_bytes",
                          "network_receive_bytes_per_second", "load1", "load15")  # fmt: skip
                found = {m: query(vigil, m, started) for m in wanted}
                return found if all(found.values()) else None

            found = wait_for(canonical, 20, 0.5, "canonical metrics from node_exporter")
            for metric in ("cpu_usage_percent", "memory_used_percent", "filesystem_used_percent"):
                for labels, points in found[metric]:
                    assert all(0 <= value <= 100 for _, value in points), (metric, labels)
            mounts = {labels["mountpoint"] for labels, _ in found["filesystem_used_percent"]}
            assert "/" in mounts and not any(m.startswith(("/proc", "/sys")) for m in mounts)
            assert all(v > 0 for _, points in found["memory_available_bytes"] for _, v in points)
            assert query(vigil, "node_cpu_seconds_total", started)  # the native series too
            assert "ok" in vigil.vigil("scrape", "list")

            exporter.kill()
            exporter.wait()
            stopped = int(time.time())

            def failing() -> str | None:
                listing = vigil.vigil("scrape", "list")
                return listing if "failing  connection refused" in listing else None

            wait_for(failing, 10, 0.5, "the target to record its error")

            def up_zero() -> bool:
                return any(
                    value == 0.0 and ts >= stopped
                    for _, points in query(vigil, "up", stopped - 1)
                    for ts, value in points
                )

            wait_for(up_zero, 10, 0.5, "an up sample 0 after node_exporter stopped")
        except BaseException:
            print(vigil.log())
            raise
        finally:
            vigil.stop()
