from __future__ import annotations

import gzip
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from vigil.metrics.models import Sample, Series
from vigil.servers.models import IngestToken, Server
from vigil.testing import basic, bearer, ingest_blocked_by_a_lock, make_server, make_token

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "fixtures" / "telegraf"


def now() -> int:
    return int(time.time())


def ns(seconds: int) -> int:
    return seconds * 1_000_000_000


def post(client, body: bytes | str, headers: dict | None = None, params: str = "db=telegraf", **kw):
    if isinstance(body, str):
        body = body.encode()
    return client.post(
        f"/write?{params}",
        data=body,
        content_type="text/plain; charset=utf-8",
        **(headers or {}),
        **kw,
    )


def stored(metric: str, **labels: str) -> list[tuple[int, float]]:
    rows = Sample.objects.filter(series__metric=metric).order_by("ts")
    if labels:
        rows = [
            (ts, v, lb)
            for ts, v, lb in rows.values_list("ts", "value", "series__labels")
            if lb == labels
        ]
        return [(ts, v) for ts, v, _ in rows]
    return list(rows.values_list("ts", "value"))


def telegraf_token(host: str) -> dict[str, str]:
    """Basic auth with the token as password, as Telegraf's username/password send it."""
    return basic("telegraf", make_token(make_server(host)))


# Answers ---------------------------------------------------------------------


def test_it_stores_a_telegraf_batch_and_answers_204_with_the_influxdb_headers(client):
    t = now()
    body = f"cpu,cpu=cpu-total,host=web-1 usage_idle=90.5,usage_user=7.5 {ns(t)}\n"
    response = post(client, body, basic("telegraf", make_token()))
    assert response.status_code == 204
    assert response.content == b""
    assert response["X-Influxdb-Version"].startswith("1.")
    assert stored("cpu.usage_idle") == [(t, 90.5)]
    assert stored("cpu.usage_user") == [(t, 7.5)]
    assert stored("cpu_usage_percent") == [(t, 9.5)]
    series = Series.objects.get(metric="cpu.usage_idle")
    assert series.server.host_name == "web-1"
    assert series.labels == {"cpu": "cpu-total"}


def test_a_partial_write_commits_the_good_lines_and_names_the_first_bad_one(client):
    t = now()
    body = (
        f"mem,host=web-1 used_percent=40.5 {ns(t)}\n"
        f"mem,host=web-1 used_percent=oops {ns(t + 10)}\n"
        f"system,host=web-1 load1=0.5 {ns(t)}\n"
        f"system,host=web-1 load5 {ns(t)}\n"
    )
    response = post(client, body, basic("telegraf", make_token()))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("partial write: line 2: invalid value 'oops' in field 'used_percent'")
    assert "rejected 2" in error
    assert response["X-Influxdb-Error"] == error
    assert response["Content-Type"] == "application/json"
    assert stored("mem.used_percent") == [(t, 40.5)]
    assert stored("memory_used_percent") == [(t, 40.5)]
    assert stored("load1") == [(t, 0.5)]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_AUTHORIZATION": "Bearer vgi_wrong"},
        {"HTTP_AUTHORIZATION": "Basic !!!"},
        basic("telegraf", "vgi_wrong"),
    ],
    ids=["none", "wrong-bearer", "garbled-basic", "wrong-password"],
)
@pytest.mark.parametrize("path", ["/write?db=telegraf", "/query?q=CREATE+DATABASE+telegraf"])
def test_it_answers_401_with_a_basic_challenge_and_a_json_body_without_a_valid_token(
    client, headers, path
):
    response = client.post(path, data=b"m,host=web-1 v=1", content_type="text/plain", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic realm=")
    assert "token" in response.json()["error"]
    assert Sample.objects.count() == 0


def test_wrong_credentials_in_the_query_string_get_401(client):
    response = post(client, "m,host=web-1 v=1", params="db=x&u=telegraf&p=vgi_wrong")
    assert response.status_code == 401


@pytest.mark.parametrize(
    "credentials",
    [
        lambda token: ({}, f"db=telegraf&u=telegraf&p={token}"),
        lambda token: ({}, f"db=telegraf&u={token}"),
        lambda token: (basic("telegraf", token), "db=telegraf"),
        lambda token: (basic(token, ""), "db=telegraf"),
        lambda token: (bearer(token), "db=telegraf"),
        lambda token: ({"HTTP_AUTHORIZATION": f"Token {token}"}, "db=telegraf"),
    ],
    ids=["p-param", "u-param", "basic-password", "basic-user", "bearer", "token"],
)
def test_it_accepts_the_token_in_every_form_influx_clients_send(client, credentials):
    headers, params = credentials(make_token())
    response = post(client, f"m,host=web-1 v=1 {ns(now())}", headers, params=params)
    assert response.status_code == 204
    assert Sample.objects.count() == 1


def test_the_database_and_retention_policy_are_accepted_and_ignored(client):
    token = basic("telegraf", make_token())
    t = now()
    for i, params in enumerate(["db=telegraf&rp=autogen", "db=other", ""]):
        assert (
            post(client, f"m,host=web-1 v={i} {ns(t + i)}", token, params=params).status_code == 204
        )
    assert stored("m.v") == [(t, 0.0), (t + 1, 1.0), (t + 2, 2.0)]
    assert Series.objects.get().labels == {}


def test_the_precision_parameter_sets_the_unit_of_the_timestamps(client):
    t = now()
    token = basic("telegraf", make_token())
    assert post(client, f"m,host=web-1 v=1 {t}", token, params="precision=s").status_code == 204
    ms = (t + 1) * 1000
    assert post(client, f"m,host=web-1 v=2 {ms}", token, params="precision=ms").status_code == 204
    assert stored("m.v") == [(t, 1.0), (t + 1, 2.0)]


def test_an_unknown_precision_is_a_400_naming_it(client):
    response = post(client, "m,host=web-1 v=1", basic("t", make_token()), params="precision=d")
    assert response.status_code == 400
    assert "invalid precision 'd'" in response.json()["error"]


def test_a_line_without_timestamp_is_stamped_now(client):
    before = now()
    assert post(client, "m,host=web-1 v=1", basic("t", make_token())).status_code == 204
    [(ts, _)] = stored("m.v")
    assert before <= ts <= now()


def test_string_fields_are_skipped_without_an_error(client):
    t = now()
    body = f'system,host=web-1 uptime_format="14 days, 11:07",n_users=3i {ns(t)}\n'
    assert post(client, body, basic("t", make_token())).status_code == 204
    assert list(Series.objects.values_list("metric", flat=True)) == ["system.n_users"]


def test_a_token_bound_to_a_server_takes_lines_without_host(client):
    server = make_server("db-1")
    t = now()
    body = f"mem used_percent=12.5 {ns(t)}\nmem,host=db-1 used_percent=13.5 {ns(t + 1)}"
    response = post(client, body, basic("telegraf", make_token(server)))
    assert response.status_code == 204
    assert stored("memory_used_percent") == [(t, 12.5), (t + 1, 13.5)]
    assert set(Series.objects.values_list("server", flat=True)) == {server.pk}


def test_a_token_bound_to_a_server_cannot_write_for_another_host(client):
    response = post(
        client, "mem,host=web-1 used_percent=1", basic("t", make_token(make_server("db-1")))
    )
    assert response.status_code == 403
    assert "bound to server 'db-1'" in response.json()["error"]


def test_a_registering_token_registers_servers_by_host_tag_and_needs_one(client):
    t = now()
    body = f"m,host=web-1 v=1 {ns(t)}\nm,host=web-2 v=1 {ns(t)}\nm v=1 {ns(t)}\n"
    response = post(client, body, basic("t", make_token()))
    assert response.status_code == 400
    assert "host name is required" in response.json()["error"]
    assert sorted(Server.objects.values_list("host_name", flat=True)) == ["web-1", "web-2"]
    assert Sample.objects.count() == 2


def test_it_accepts_a_gzip_body(client):
    body = gzip.compress(f"m,host=web-1 v=1 {ns(now())}\n".encode())
    response = post(client, body, basic("t", make_token()), HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 204
    assert Sample.objects.count() == 1


def test_it_answers_413_over_the_size_limit_before_decompression(client, settings):
    settings.INGEST_MAX_BODY_BYTES = 1000
    body = "".join(f"m,host=web-1 v={i} {ns(now())}\n" for i in range(100))
    response = post(client, body, basic("t", make_token()))
    assert response.status_code == 413
    assert "larger than 1000 bytes" in response.json()["error"]
    assert Sample.objects.count() == 0


def test_it_answers_413_over_the_size_limit_after_decompression(client, settings):
    settings.INGEST_MAX_DECODED_BYTES = 100_000
    body = gzip.compress(b"# " + b"x" * 10_000_000)
    response = post(client, body, basic("t", make_token()), HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413
    assert "decompressed" in response.json()["error"]


def test_it_answers_400_with_json_to_a_broken_gzip_body(client):
    response = post(client, b"not gzip", basic("t", make_token()), HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert "gzip" in response.json()["error"]


def test_write_takes_only_post(client):
    assert client.get("/write?db=telegraf").status_code == 405


@pytest.mark.django_db(transaction=True)
def test_it_answers_503_with_retry_after_and_json_while_the_database_is_locked(client, settings):
    token = basic("telegraf", make_token(make_server("web-1")))
    with ingest_blocked_by_a_lock(settings):
        response = post(client, f"m,host=web-1 v=1 {ns(now())}", token)
    assert response.status_code == 503
    assert response["Retry-After"] == str(settings.INGEST_RETRY_AFTER_SECONDS)
    # Telegraf drops a batch whose error says "partial write" or "unable to parse".
    error = response.json()["error"]
    assert "partial write" not in error and "unable to parse" not in error


def test_no_query_per_line_once_the_series_are_known(
    client, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    token = basic("t", make_token())
    t = now() - 100

    def batch(at: int, lines: int) -> str:
        return "".join(
            f"cpu,cpu=cpu{i},host=web-1 usage_idle={i}.5,usage_user=1 {ns(at)}\n"
            for i in range(lines)
        )

    with django_capture_on_commit_callbacks(execute=True):
        post(client, batch(t, 100), token)
    with django_assert_max_num_queries(8):
        assert post(client, batch(t + 10, 100), token).status_code == 204
    assert Sample.objects.count() == 400


# Telegraf's documented output of its default inputs --------------------------


def test_telegraf_default_inputs_give_the_canonical_metrics(client):
    hosts = {"cpu": "loaner", "net": "HOST", "system": "tyrion"}
    for name in ("cpu", "mem", "swap", "disk", "diskio", "net", "system"):
        body = (FIXTURES / f"{name}.lp").read_bytes()
        response = post(client, body, telegraf_token(hosts.get(name, f"{name}-host")))
        assert response.status_code == 204, (name, response.content)

    # Vigil keeps six significant digits of what it computes (precision.py).
    assert stored("cpu_usage_percent") == [(1568760922, 17.6166)]
    assert stored("memory_used_percent") == [(1574712869, 15.95)]
    assert stored("memory_available_bytes") == [(1574712869, 16818249728.0)]
    assert stored("swap_used_percent") == [(1511894782, 45.4388)]
    # devfs and autofs are pseudo file systems.
    assert sorted(
        Series.objects.filter(metric__startswith="filesystem_").values_list("metric", "labels")
    ) == [
        ("filesystem_free_bytes", {"mountpoint": "/"}),
        ("filesystem_used_percent", {"mountpoint": "/"}),
    ]
    assert stored("filesystem_used_percent") == [(1453832006, 20.131)]
    assert stored("filesystem_free_bytes") == [(1453832006, 398407520256.0)]
    assert stored("load1") == [(1483964144, 3.72)]
    assert stored("load5") == [(1483964144, 2.4)]
    assert stored("load15") == [(1483964144, 2.1)]
    assert stored("cpu_cores") == [(1483964144, 4.0)]
    # Counters give rates from the second reading on.
    assert stored("net.bytes_recv") == []
    assert stored("network_receive_bytes_per_second") == []
    # Native names keep every numeric field, tags as labels.
    assert stored("net.tcp_insegs", interface="all") == [(1492831540, 3580226.0)]
    assert stored("mem.used") == [(1574712869, 3335778304.0)]
    assert stored("system.uptime") == [(1483964144, 1249632.0)]
    assert Series.objects.filter(metric="cpu.usage_idle").count() == 5


def test_two_consecutive_batches_give_network_and_disk_rates(client):
    token = telegraf_token("web-1")
    t = now() - 20

    def batch(at: int, rx: int, tx: int, read: int, written: int) -> str:
        return (
            f"net,host=web-1,interface=eth0 bytes_recv={rx}i,bytes_sent={tx}i,drop_in=0i {ns(at)}\n"
            f"net,host=web-1,interface=all tcp_insegs={rx}i {ns(at)}\n"
            f"diskio,host=web-1,name=sda read_bytes={read}i,write_bytes={written}i,"
            f"iops_in_progress=1i {ns(at)}\n"
            f"diskio,host=web-1,name=loop0 read_bytes={read}i,write_bytes={written}i {ns(at)}\n"
        )

    assert post(client, batch(t, 1000, 500, 4096, 0), token).status_code == 204
    assert post(client, batch(t + 10, 21_000, 1500, 45_056, 10_240), token).status_code == 204

    assert stored("network_receive_bytes_per_second", interface="eth0") == [(t + 10, 2000.0)]
    assert stored("network_transmit_bytes_per_second", interface="eth0") == [(t + 10, 100.0)]
    assert stored("disk_read_bytes_per_second", device="sda") == [(t + 10, 4096.0)]
    assert stored("disk_write_bytes_per_second", device="sda") == [(t + 10, 1024.0)]
    # The native counters are rates too; gauges stay as sent.
    assert stored("net.bytes_recv", interface="eth0") == [(t + 10, 2000.0)]
    assert stored("diskio.iops_in_progress", name="sda") == [(t, 1.0), (t + 10, 1.0)]
    # interface=all (protocol counters) and loop devices have no canonical series.
    canonical = Series.objects.filter(metric__contains="_per_second")
    assert sorted(canonical.values_list("metric", "labels")) == [
        ("disk_read_bytes_per_second", {"device": "sda"}),
        ("disk_write_bytes_per_second", {"device": "sda"}),
        ("network_receive_bytes_per_second", {"interface": "eth0"}),
        ("network_transmit_bytes_per_second", {"interface": "eth0"}),
    ]


# /ping and /query ------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "head"])
def test_ping_answers_204_with_the_version_and_needs_no_token(client, method):
    response = getattr(client, method)("/ping")
    assert response.status_code == 204
    assert response["X-Influxdb-Version"].startswith("1.")
    assert response["X-Influxdb-Build"] == "OSS"


def test_ping_verbose_answers_the_version_in_json(client):
    response = client.get("/ping?verbose=true")
    assert response.status_code == 200
    assert response.json()["version"].startswith("1.")


def test_query_answers_telegrafs_create_database_sent_as_a_form(client):
    response = client.post(
        "/query",
        data=urlencode({"q": 'CREATE DATABASE "telegraf"'}),
        content_type="application/x-www-form-urlencoded",
        **basic("telegraf", make_token()),
    )
    assert response.status_code == 200
    assert response.json() == {"results": [{"statement_id": 0}]}
    assert response["X-Influxdb-Version"].startswith("1.")


def test_query_takes_statements_in_the_query_string_too(client):
    q = urlencode({"q": "create database telegraf; SHOW DATABASES; SELECT * FROM cpu"})
    token = make_token()
    response = client.get(f"/query?{q}&u=telegraf&p={token}")
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0] == {"statement_id": 0}
    assert results[1] == {
        "statement_id": 1,
        "series": [{"name": "databases", "columns": ["name"]}],
    }
    assert results[2]["statement_id"] == 2
    assert "/api/v1/query" in results[2]["error"]


def test_query_without_q_is_a_400_in_json(client):
    response = client.post("/query", **basic("telegraf", make_token()))
    assert response.status_code == 400
    assert response.json() == {"error": 'missing required parameter "q"'}


def test_query_answers_json_to_a_form_it_cannot_read(client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    headers = basic("telegraf", make_token())
    body = "&".join(f"k{i}=v" for i in range(50))
    response = client.post(
        "/query", data=body, content_type="application/x-www-form-urlencoded", **headers
    )
    assert response.status_code == 400
    assert "cannot read the form" in response.json()["error"]
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = client.post(
        "/query",
        data="q=" + "x" * 1000,
        content_type="application/x-www-form-urlencoded",
        **headers,
    )
    assert response.status_code == 413


def test_query_takes_no_disabled_token(client):
    token = make_token()
    IngestToken.objects.update(enabled=False)
    response = client.get(f"/query?q=SHOW+DATABASES&p={token}")
    assert response.status_code == 401


# Hostile input ---------------------------------------------------------------

GOOD = "ok,host=web-1 v=1 {ts}\n"


def _many_tags(n: int) -> str:
    return "m," + ",".join(f"t{i}=x" for i in range(n)) + " v=1"


HOSTILE: list[tuple[str, bytes, str]] = [
    ("truncated-value", b"cpu,host=web-1 usage=", "missing value"),
    ("truncated-key", b"cpu,host=web-1", "missing fields"),
    ("truncated-tag", b"cpu,host=", "missing fields"),
    ("truncated-string", b'cpu,host=web-1 msg="abc', "unterminated string"),
    ("trailing-backslash", b"cpu\\", "missing fields"),
    ("escaped-separators-only", b"\\ \\,\\=", "missing fields"),
    ("nan", b"m v=NaN", "invalid value 'NaN'"),
    ("inf", b"m v=Inf", "invalid value 'Inf'"),
    ("minus-inf", b"m v=-inf", "invalid value '-inf'"),
    ("float-overflow", b"m v=1e999", "out of range"),
    ("int-overflow", b"m v=99999999999999999999i", "out of range"),
    ("uint-overflow", b"m v=99999999999999999999999u", "out of range"),
    ("negative-uint", b"m v=-1u", "invalid unsigned"),
    ("huge-digits", b"m v=" + b"9" * 100_000 + b"i", "out of range"),
    ("megabyte-tag-value", b"m,t=" + b"x" * 1_000_000 + b" v=1", "longer than 200"),
    ("megabyte-field-key", b"m " + b"f" * 1_000_000 + b"=1", "longer than 200"),
    ("megabyte-measurement", b"m" * 1_000_000 + b" v=1", "longer than"),
    ("invalid-utf8", b"m,t=\xc3\x28 v=1", "not valid UTF-8"),
    ("nul-bytes", b"m\x00,t=\x00 v=\x00", "invalid value"),
    ("bad-boolean", b"m v=yes", "invalid value 'yes'"),
    ("float-as-int", b"m v=1.5i", "invalid integer"),
    ("json-value", b'm v={"a":1}', "invalid value"),
    ("hex", b"m v=0x10", "invalid number"),
    ("duplicate-fields", b"m v=1,v=2", "duplicate field 'v'"),
    ("duplicate-tags", b"m,a=1,a=2 v=1", "duplicate tag 'a'"),
    ("duplicate-host", b"m,host=a,host=b v=1", "duplicate tag 'host'"),
    ("epoch", b"m v=1 0", "before 2000-01-01"),
    ("far-past", b"m v=1 -9223372036854775808", "before 2000-01-01"),
    ("far-future", b"m v=1 9223372036854775807", "in the future"),
    ("seconds-as-ns", b"m v=1 1700000000", "before 2000-01-01"),
    ("bad-timestamp", b"m v=1 12ab", "invalid timestamp"),
    ("timestamp-digits", b"m v=1 " + b"1" * 10_000, "invalid timestamp"),
    ("trailing-garbage", b"m v=1 1700000000000000000 1", "after the timestamp"),
    ("empty-field-key", b"m =1", "missing field key"),
    ("unescaped-equals", b"m,a=b=c v=1", "unescaped '='"),
    ("bad-host", b"m,host=a/b v=1", "not a host name"),
    ("too-many-tags", _many_tags(40).encode(), "more than 32 tags"),
    ("quote-bomb", b"m v=" + b'"' * 100_000, "after the string"),
    ("backslash-bomb", b"m" + b"\\" * 100_000 + b" v=1", "missing fields"),
    ("comma-bomb", b"m " + b"," * 100_000, "missing field key"),
    ("plus-sign", b"m v=+1", "invalid number"),
    ("arabic-digits", "m v=١٢".encode(), "invalid value"),
]


@pytest.mark.parametrize(("bad", "reason"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_input_gets_a_400_naming_the_line_and_keeps_the_valid_part(client, bad, reason):
    t = now()
    body = GOOD.format(ts=ns(t)).encode() + bad + b"\n" + GOOD.format(ts=ns(t + 1)).encode()
    response = post(client, body, basic("telegraf", make_token()))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("partial write: line 2: ")
    assert reason in error
    assert stored("ok.v") == [(t, 1.0), (t + 1, 1.0)]


def test_a_hundred_thousand_bad_lines_are_each_rejected_and_the_good_one_kept(client):
    t = now()
    body = b"bad\n" * 100_000 + GOOD.format(ts=ns(t)).encode()
    response = post(client, body, basic("telegraf", make_token()))
    assert response.status_code == 400
    assert "rejected 100000" in response.json()["error"]
    assert stored("ok.v") == [(t, 1.0)]


def test_a_hundred_thousand_good_lines_are_stored(client):
    t = now() - 1000
    body = "".join(
        f"m,host=web-1,n={i % 1000} v={i}i {ns(t + i // 1000)}\n" for i in range(100_000)
    )
    response = post(client, body, basic("telegraf", make_token()))
    assert response.status_code == 204
    assert Sample.objects.count() == 100_000


def test_hostile_input_that_is_valid_line_protocol_is_taken(client):
    t = now()
    body = (
        f'm,host=web-1 s="{"x" * 1_000_000}",v=1 {ns(t)}\n'
        f"m,host=web-1,t=a\\ b\\,c\\=d w=1 {ns(t)}\n"
        f'm,host=web-1 w="\\\\\\"",x=2 {ns(t)}\n'
    ).encode()
    response = post(client, body, basic("telegraf", make_token()))
    assert response.status_code == 204, response.content
    assert stored("m.v") == [(t, 1.0)]
    assert stored("m.w", t="a b,c=d") == [(t, 1.0)]
    assert stored("m.x") == [(t, 2.0)]
