"""The agent against a real `vigil run` that goes away and comes back."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from urllib.parse import urlencode

import orjson
import pytest

from vigil.testing import VigilProcess, http_get, scratch_database, wait_for

pytestmark = pytest.mark.e2e
HOST = "spool-test"


def cpu_timestamps(vigil: VigilProcess, since: int) -> list[int]:
    auth = base64.b64encode(f"admin:{vigil.admin_password}".encode()).decode()
    params = {
        "metric": "cpu_usage_percent",
        "server": HOST,
        "start": since,
        "end": int(time.time()) + 5,
        "max_points": 10_000,
    }
    url = f"{vigil.url}/api/v1/query?{urlencode(params)}"
    body = orjson.loads(http_get(url, timeout=5, headers={"Authorization": f"Basic {auth}"})[1])
    return [int(t) for s in body["series"] for t, _ in s["points"]]


def test_samples_collected_while_the_server_is_down_arrive_once_it_is_back(tmp_path):
    spool_dir = tmp_path / "spool"
    with scratch_database() as database_url:
        vigil = VigilProcess(tmp_path / "data", database_url, "--no-local-agent").start()
        token = vigil.vigil("token", "create", "--name", "spool-test").strip().splitlines()[-1]
        started = int(time.time())
        agent = subprocess.Popen(
            [sys.executable, "-m", "vigil.cli", "agent", "--url", vigil.url,
             "--interval", "1", "--spool-dir", str(spool_dir), "--hostname", HOST],
            env={**os.environ, "VIGIL_AGENT_TOKEN": token},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            wait_for(lambda: len(cpu_timestamps(vigil, started)) >= 3, 30, what="first samples")
            vigil.stop()
            down_from = int(time.time())
            time.sleep(6)
            assert len(list(spool_dir.glob("*.json"))) >= 4, "the agent spooled nothing"
            down_until = int(time.time())
            vigil.start()
            wait_for(lambda: not list(spool_dir.glob("*.json")), 30, what="the spool to drain")
            time.sleep(2)
            agent.send_signal(signal.SIGTERM)
            output = agent.communicate(timeout=20)[0]
            stamps = cpu_timestamps(vigil, started - 5)
        finally:
            agent.kill()
            vigil.stop()

    assert agent.returncode == 0, output
    assert stamps == sorted(set(stamps))
    # Every second was collected, the outage included: no gap beyond a late tick.
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False) if b - a > 1]
    assert all(gap <= 3 for gap in gaps), f"samples are missing: gaps {gaps}\n{output}"
    during_outage = [t for t in stamps if down_from < t < down_until]
    assert len(during_outage) >= down_until - down_from - 3, output
