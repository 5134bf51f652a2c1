"""Debian's real collectd (write_http, Format "JSON") against a real `vigil run`."""

from __future__ import annotations

import base64
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlencode

import orjson
import pytest

from vigil.testing import VigilProcess, http_get, scratch_database, wait_for

pytestmark = pytest.mark.e2e
COLLECTD = shutil.which("collectd") or "/usr/sbin/collectd"
TYPES_DB = "/usr/share/collectd/types.db"
SKIPPED_DEVICE_PREFIXES = ("loop", "ram", "zram", "sr")

CONFIG = """\
Hostname "{host}"
FQDNLookup false
BaseDir "{dir}"
PIDFile "{dir}/collectd.pid"
TypesDB "{types_db}"
Interval 1

LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File "{dir}/collectd.log"
</Plugin>

LoadPlugin cpu
LoadPlugin memory
LoadPlugin swap
LoadPlugin df
LoadPlugin disk
LoadPlugin interface
LoadPlugin load
LoadPlugin write_http
<Plugin write_http>
  <Node "vigil">
    URL "{url}/api/v1/ingest/collectd"
    Format "JSON"
    StoreRates false
    LogHttpError true
{auth}
  </Node>
</Plugin>
"""


@pytest.fixture(scope="module")
def vigil(tmp_path_factory):
    if not Path(COLLECTD).exists():
        pytest.fail("collectd is missing: install Debian's collectd-core package")
    with scratch_database() as database_url:
        proc = VigilProcess(tmp_path_factory.mktemp("vigil"), database_url, "--no-local-agent")
        proc.start()
        try:
            yield proc
        finally:
            proc.stop()


@pytest.fixture(scope="module")
def token(vigil) -> str:
    return vigil.vigil("token", "create", "--name", "collectd").strip().splitlines()[-1]


class Collectd:
    """`collectd -f` with a configuration of its own in a temporary directory."""

    def __init__(self, directory: Path, host: str, url: str, auth: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.log_path = directory / "collectd.log"
        self.config = directory / "collectd.conf"
        self.config.write_text(
            CONFIG.format(host=host, dir=directory, types_db=TYPES_DB, url=url, auth=auth)
        )
        self.proc = subprocess.Popen(
            [COLLECTD, "-f", "-C", str(self.config), "-P", str(directory / "collectd.pid")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def check_running(self) -> None:
        if self.proc.poll() is not None:
            output = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
            hint = ""
            if "libyajl" in output + self.log():
                hint = "write_http needs libyajl2: apt-get install libyajl2\n"
            raise AssertionError(f"collectd exited:\n{hint}{output}\n{self.log()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def query(vigil: VigilProcess, metric: str, host: str, since: int) -> list[dict]:
    auth = base64.b64encode(f"admin:{vigil.admin_password}".encode()).decode()
    params = {"metric": metric, "server": host, "start": since, "end": int(time.time()) + 5}
    url = f"{vigil.url}/api/v1/query?{urlencode(params)}"
    status, body = http_get(url, timeout=5, headers={"Authorization": f"Basic {auth}"})
    assert status == 200
    return orjson.loads(body)["series"]


def values(series: list[dict]) -> list[float]:
    return [value for s in series for _, value in s["points"]]


def has_disks() -> bool:
    with open("/proc/diskstats") as f:
        devices = [line.split()[2] for line in f if len(line.split()) > 2]
    return any(not d.startswith(SKIPPED_DEVICE_PREFIXES) for d in devices)


PERCENTS = ["cpu_usage_percent", "memory_used_percent", "swap_used_percent"]
POSITIVE = ["memory_available_bytes"]
RATES = ["network_receive_bytes_per_second", "network_transmit_bytes_per_second"]
LOADS = ["load1", "load5", "load15"]


def test_collectd_with_user_and_password_fills_every_canonical_metric(vigil, token, tmp_path):
    host = "collectd-basic"
    started = int(time.time()) - 2
    auth = f'    User "collectd"\n    Password "{token}"'
    collectd = Collectd(tmp_path / "collectd", host, vigil.url, auth)
    metrics = PERCENTS + POSITIVE + RATES + LOADS + ["filesystem_used_percent"]
    metrics += ["filesystem_free_bytes"]
    if has_disks():
        metrics += ["disk_read_bytes_per_second", "disk_write_bytes_per_second"]
    found: dict[str, list[dict]] = {}

    def complete(metric: str, series: list[dict]) -> bool:
        # Interfaces come in several value lists: wait for the loopback one too.
        return bool(series) and (
            metric not in RATES or any(s["labels"]["interface"] == "lo" for s in series)
        )

    def all_metrics_arrived() -> bool:
        collectd.check_running()
        for metric in metrics:
            if metric not in found and complete(
                metric, series := query(vigil, metric, host, started)
            ):
                found[metric] = series
        return len(found) == len(metrics)

    try:
        wait_for(all_metrics_arrived, 20, interval=0.5, what=f"canonical metrics of {host}")
    except AssertionError as exc:
        missing = set(metrics) - set(found)
        raise AssertionError(f"{exc}: missing {missing}\n{collectd.log()}") from None
    finally:
        collectd.stop()

    for metric in PERCENTS + ["filesystem_used_percent"]:
        assert all(0 <= v <= 100 for v in values(found[metric])), (metric, found[metric])
    for metric in POSITIVE + ["filesystem_free_bytes"]:
        assert all(v > 0 for v in values(found[metric])), (metric, found[metric])
    for metric in RATES + LOADS:
        assert all(v >= 0 for v in values(found[metric])), (metric, found[metric])
    mountpoints = {s["labels"]["mountpoint"] for s in found["filesystem_used_percent"]}
    assert "/" in mountpoints
    assert not any(m == "/dev" or m.startswith(("/dev/", "/proc", "/sys/")) for m in mountpoints)
    # The native series keep collectd's names.
    assert query(vigil, "cpu/cpu-idle", host, started)
    assert "curl_easy_perform failed" not in collectd.log()


def test_collectd_with_a_bearer_header_is_accepted(vigil, token, tmp_path):
    host = "collectd-bearer"
    started = int(time.time()) - 2
    auth = f'    Header "Authorization: Bearer {token}"'
    collectd = Collectd(tmp_path / "collectd", host, vigil.url, auth)

    def arrived() -> bool:
        collectd.check_running()
        return all(query(vigil, m, host, started) for m in ("cpu_usage_percent", "load1"))

    try:
        wait_for(arrived, 20, interval=0.5, what=f"cpu and load of {host}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{collectd.log()}") from None
    finally:
        collectd.stop()
    assert all(0 <= v <= 100 for v in values(query(vigil, "cpu_usage_percent", host, started)))
    assert "HTTP Error code: 401" not in collectd.log()
