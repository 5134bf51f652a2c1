"""Telegraf's `outputs.influxdb` conversation, and an Influx client, against a real `vigil run`."""

from __future__ import annotations

import base64
import gzip
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

import orjson
import pytest

from vigil.testing import VigilProcess, http_get, scratch_database

pytestmark = pytest.mark.e2e
HOST = "telegraf-e2e"
CLIENT_HOST = "influx-client"


@pytest.fixture(scope="module")
def vigil(tmp_path_factory):
    with scratch_database() as database_url:
        proc = VigilProcess(tmp_path_factory.mktemp("influx-e2e"), database_url, "--no-local-agent")
        proc.start()
        try:
            proc.token = (
                proc.vigil("token", "create", "--name", "telegraf").strip().splitlines()[-1]
            )
            yield proc
        finally:
            proc.stop()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def send(url: str, body: bytes, headers: dict[str, str], method: str = "POST"):
    """(status, headers, body) of one request, errors included."""
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def query(
    vigil: VigilProcess, metric: str, since: int, server: str = HOST, **labels: str
) -> list[list]:
    params = {
        "metric": metric,
        "server": server,
        "start": since,
        "end": int(time.time()) + 5,
        "max_points": 10_000,
        **labels,
    }
    url = f"{vigil.url}/api/v1/query?{urlencode(params)}"
    auth = {"Authorization": basic("admin", vigil.admin_password)}
    body = orjson.loads(http_get(url, timeout=5, headers=auth)[1])
    return [[int(t), v] for s in body["series"] for t, v in s["points"]]


def telegraf_batch(at: int, step: int) -> bytes:
    """What Telegraf's default inputs send for one interval, as its serializer writes it."""
    t = at * 1_000_000_000
    rx, tx = 1_000_000 + step * 20_000, 500_000 + step * 5_000
    read, written = 4096 + step * 40_960, step * 10_240
    lines = [
        f"cpu,cpu=cpu0,host={HOST} usage_idle=90.5,usage_system=2,usage_user=7.5 {t}",
        f"cpu,cpu=cpu-total,host={HOST} usage_idle={80 - step},usage_system=5,"
        f"usage_user={15 + step} {t}",
        f"mem,host={HOST} available=6442450944i,total=8589934592i,used_percent=25.5 {t}",
        f"swap,host={HOST} free=1073741824i,total=1073741824i,used_percent=0 {t}",
        f"disk,device=sda1,fstype=ext4,host={HOST},mode=rw,path=/ free=53687091200i,"
        f"used_percent=50.25 {t}",
        f"disk,device=tmpfs,fstype=tmpfs,host={HOST},mode=rw,path=/run free=1i,used_percent=1 {t}",
        f"diskio,host={HOST},name=sda io_time=10i,read_bytes={read}i,write_bytes={written}i {t}",
        f"net,host={HOST},interface=eth0 bytes_recv={rx}i,bytes_sent={tx}i,drop_in=0i {t}",
        f"net,host={HOST},interface=all tcp_currestab=5i {t}",
        f"system,host={HOST} load1=0.25,load15=0.75,load5=0.5,n_cpus=2i {t}",
        f'system,host={HOST} uptime_format="1 day,  2:03" {t}',
    ]
    return ("\n".join(lines) + "\n").encode()


def test_telegraf_conversation_gives_canonical_metrics_and_rates(vigil):
    auth = basic("telegraf", vigil.token)
    agent = {"User-Agent": "Telegraf/1.32.0 Go/1.23.0", "Authorization": auth}

    # 1. At start-up Telegraf creates its database.
    status, headers, body = send(
        f"{vigil.url}/query",
        urlencode({"q": 'CREATE DATABASE "telegraf"'}).encode(),
        {**agent, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (status, orjson.loads(body)) == (200, {"results": [{"statement_id": 0}]})
    assert headers["X-Influxdb-Version"].startswith("1.")
    status, headers, _ = send(f"{vigil.url}/ping", None, {}, method="HEAD")
    assert status == 204 and headers["X-Influxdb-Version"].startswith("1.")

    # 2. Two intervals, gzipped, 10 s apart.
    t = int(time.time()) - 30
    write = {**agent, "Content-Type": "text/plain; charset=utf-8", "Content-Encoding": "gzip"}
    for step in (0, 1):
        status, _, body = send(
            f"{vigil.url}/write?db=telegraf",
            gzip.compress(telegraf_batch(t + 10 * step, step)),
            write,
        )
        assert status == 204, body

    # 3. The canonical metrics, read back through the query API.
    since = t - 5
    assert query(vigil, "cpu_usage_percent", since) == [[t, 20.0], [t + 10, 21.0]]
    assert query(vigil, "memory_used_percent", since) == [[t, 25.5], [t + 10, 25.5]]
    assert query(vigil, "memory_available_bytes", since)[0] == [t, 6442450944.0]
    assert query(vigil, "swap_used_percent", since)[0] == [t, 0.0]
    assert query(vigil, "filesystem_used_percent", since, mountpoint="/")[0] == [t, 50.25]
    assert query(vigil, "filesystem_free_bytes", since, mountpoint="/")[0] == [t, 53687091200.0]
    assert query(vigil, "filesystem_used_percent", since, mountpoint="/run") == []
    assert query(vigil, "load1", since)[0] == [t, 0.25]
    assert query(vigil, "load5", since)[0] == [t, 0.5]
    assert query(vigil, "load15", since)[0] == [t, 0.75]
    # Counters: a rate from the second interval on, per second.
    rx = query(vigil, "network_receive_bytes_per_second", since, interface="eth0")
    assert rx == [[t + 10, 2000.0]]
    tx = query(vigil, "network_transmit_bytes_per_second", since, interface="eth0")
    assert tx == [[t + 10, 500.0]]
    assert query(vigil, "disk_read_bytes_per_second", since, device="sda") == [[t + 10, 4096.0]]
    assert query(vigil, "disk_write_bytes_per_second", since, device="sda") == [[t + 10, 1024.0]]
    # Native names are kept too.
    assert query(vigil, "net.bytes_recv", since, interface="eth0") == [[t + 10, 2000.0]]
    assert query(vigil, "system.n_cpus", since)[0] == [t, 2.0]

    # 4. A bad line: 400 with a JSON error that Telegraf logs and drops; the rest is kept.
    bad = f"mem,host={HOST} used_percent=oops {t * 10**9}\nmem,host={HOST} swap=1i {t * 10**9}"
    status, headers, body = send(
        f"{vigil.url}/write?db=telegraf", bad.encode(), write | {"Content-Encoding": "identity"}
    )
    assert status == 400
    assert orjson.loads(body)["error"].startswith("partial write: line 1: invalid value 'oops'")
    assert headers["X-Influxdb-Error"].startswith("partial write: line 1")
    assert query(vigil, "mem.swap", since) == [[t, 1.0]]

    # 5. Without the token: 401 with a basic challenge, on /write and /query alike.
    for path in ("/write?db=telegraf", "/query?q=SHOW+DATABASES"):
        status, headers, body = send(f"{vigil.url}{path}", b"m v=1", {})
        assert status == 401
        assert headers["WWW-Authenticate"].startswith("Basic")
        assert "error" in orjson.loads(body)


def test_an_influxdb_1x_client_library_writes_through_vigil(vigil):
    influxdb = pytest.importorskip("influxdb", reason="influxdb==5.3.2 is a dev dependency")
    client = influxdb.InfluxDBClient(
        host="127.0.0.1",
        port=vigil.port,
        username="telegraf",
        password=vigil.token,
        database="telegraf",
        timeout=10,
    )
    assert client.ping().startswith("1.")
    client.create_database("telegraf")
    t = int(time.time()) - 10
    assert client.write_points(
        [
            {
                "measurement": "cpu",
                "tags": {"host": CLIENT_HOST, "cpu": "cpu-total", "source": "client"},
                "time": t - 1,
                "fields": {"usage_idle": 60.0, "usage_user": 40},
            }
        ],
        time_precision="s",
    )
    line = f"mem,host={CLIENT_HOST},source=client used_percent=33.5 {t}"
    assert client.write_points([line], protocol="line", time_precision="s")

    assert query(vigil, "cpu_usage_percent", t - 5, CLIENT_HOST) == [[t - 1, 40.0]]
    assert query(vigil, "cpu.usage_user", t - 5, CLIENT_HOST, source="client") == [[t - 1, 40.0]]
    assert query(vigil, "memory_used_percent", t - 5, CLIENT_HOST) == [[t, 33.5]]

    with pytest.raises(influxdb.exceptions.InfluxDBClientError) as bad:
        client.write_points(
            [f"mem,host={CLIENT_HOST} used_percent=x {t}"], protocol="line", time_precision="s"
        )
    assert bad.value.code == 400
    assert "partial write: line 1" in bad.value.content
    wrong = influxdb.InfluxDBClient("127.0.0.1", vigil.port, "telegraf", "vgi_wrong", "telegraf")
    with pytest.raises(influxdb.exceptions.InfluxDBClientError) as refused:
        wrong.write_points([f"mem,host={CLIENT_HOST} used_percent=1"], protocol="line")
    assert refused.value.code == 401
