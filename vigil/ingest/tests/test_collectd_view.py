"""POST /api/v1/ingest/collectd through Django's test client, with real collectd bodies."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from vigil.metrics.models import Sample, Series
from vigil.servers.models import Server
from vigil.testing import basic, bearer, gzipped, ingest_blocked_by_a_lock, make_server, make_token

URL = "/api/v1/ingest/collectd"
FIXTURES = Path(__file__).parent / "fixtures" / "collectd"
pytestmark = pytest.mark.django_db


def now() -> int:
    return int(time.time())


def post(client, body: bytes, headers: dict, url: str = URL, **extra):
    return client.post(url, data=body, content_type="application/json", **headers, **extra)


def value_list(t: float | None = None, **fields) -> dict:
    doc = {
        "values": [0.5, 0.25, 0.125],
        "dstypes": ["gauge", "gauge", "gauge"],
        "dsnames": ["shortterm", "midterm", "longterm"],
        "time": now() - 1.5 if t is None else t,
        "interval": 10.0,
        "host": "web-1",
        "plugin": "load",
        "plugin_instance": "",
        "type": "load",
        "type_instance": "",
    }
    doc.update(fields)
    return doc


def body(*value_lists) -> bytes:
    return orjson.dumps(list(value_lists))


def replay(scenario: str) -> list[bytes]:
    """The real bodies of a scenario, moved by whole seconds to end a second or two ago."""
    docs = [orjson.loads(p.read_bytes()) for p in sorted((FIXTURES / scenario).glob("*.json"))]
    shift = now() - 2 - int(max(vl["time"] for doc in docs for vl in doc))
    return [
        orjson.dumps([vl | {"time": round(vl["time"] + shift, 3)} for vl in doc]) for doc in docs
    ]


def series(metric: str) -> dict[tuple, list[float]]:
    rows = Sample.objects.filter(series__metric=metric).order_by("ts")
    out: dict[tuple, list[float]] = {}
    for labels, value in rows.values_list("series__labels", "value"):
        out.setdefault(tuple(sorted(labels.items())), []).append(value)
    return out


def test_real_collectd_bodies_give_every_canonical_metric(client):
    token = make_token()
    for raw in replay("default"):
        assert post(client, raw, basic("collectd", token)).status_code == 204
    assert Server.objects.get().host_name == "collectd-fixture"
    (cpu,) = series("cpu_usage_percent").values()
    assert cpu and all(0 <= v <= 100 for v in cpu)
    (memory,) = series("memory_used_percent").values()
    assert all(0 < v < 100 for v in memory)
    assert all(v > 0 for v in series("memory_available_bytes")[()])
    assert set(series("swap_used_percent")[()]) == {0.0}  # this machine has no swap
    used = series("filesystem_used_percent")
    assert (("mountpoint", "/"),) in used
    assert not any(dict(k)["mountpoint"].startswith(("/dev", "/sys")) for k in used)
    assert all(v > 0 for v in series("filesystem_free_bytes")[(("mountpoint", "/"),)])
    assert (("device", "vda"),) in series("disk_read_bytes_per_second")
    assert (("device", "vda"),) in series("disk_write_bytes_per_second")
    assert (("interface", "lo"),) in series("network_receive_bytes_per_second")
    assert (("interface", "lo"),) in series("network_transmit_bytes_per_second")
    for metric in ("load1", "load5", "load15"):
        assert all(v >= 0 for v in series(metric)[()])
    assert Series.objects.filter(metric="cpu/cpu-idle", labels={"instance": "1"}).exists()


@pytest.mark.parametrize(
    ("scenario", "query", "metrics"),
    [
        ("store-rates", "?store_rates=true", ["cpu_usage_percent", "disk_read_bytes_per_second"]),
        ("percent", "", ["cpu_usage_percent", "memory_used_percent", "filesystem_used_percent"]),
        ("aggregated", "", ["cpu_usage_percent", "memory_used_percent"]),
        ("active", "", ["cpu_usage_percent"]),
    ],
)
def test_real_bodies_of_other_configurations_give_the_canonical_metrics(
    client, scenario, query, metrics
):
    token = make_token()
    for raw in replay(scenario):
        assert post(client, raw, bearer(token), URL + query).status_code == 204
    for metric in metrics:
        found = series(metric)
        assert found, metric
        assert all(v >= 0 for values in found.values() for v in values), metric
    assert all(v <= 100 for v in next(iter(series("cpu_usage_percent").values())))


@pytest.mark.parametrize(
    ("scenario", "query", "cores"),
    [
        # The machine that produced the fixtures has 2 CPUs (see their collectd.conf).
        ("default", "", {2.0}),
        ("store-rates", "?store_rates=true", {2.0}),
        ("percent", "", {2.0}),
        ("active", "", {2.0}),
        ("num-cpu", "", {2.0}),  # aggregated, with ReportNumCpu true
        ("aggregated", "", None),  # aggregated without a count: no cores, no per-core rule
    ],
)
def test_real_bodies_give_cpu_cores_where_collectd_tells_the_cpus(client, scenario, query, cores):
    token = make_token()
    for raw in replay(scenario):
        assert post(client, raw, bearer(token), URL + query).status_code == 204
    found = series("cpu_cores")
    if cores is None:
        assert found == {}
        assert series("cpu_usage_percent")  # the CPU readings themselves were complete
    else:
        # Never a partial count, although write_http split CPUs over requests.
        assert list(found) == [()] and set(found[()]) == cores


def test_store_rates_on_stores_the_rates_collectd_computed(client):
    token = make_token()
    t = now() - 1.5
    vl = value_list(
        t, plugin="interface", type="if_octets", plugin_instance="eth0",
        values=[1000, 20.5], dstypes=["derive", "derive"], dsnames=["rx", "tx"],
    )  # fmt: skip
    assert post(client, body(vl), bearer(token), URL + "?store_rates=true").status_code == 204
    assert series("interface/if_octets.rx") == {(("instance", "eth0"),): [1000.0]}
    assert series("network_transmit_bytes_per_second") == {(("interface", "eth0"),): [20.5]}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_AUTHORIZATION": "Bearer vgi_wrong"},
        {"HTTP_AUTHORIZATION": "Basic !!!"},
        basic("collectd", "vgi_wrong"),
    ],
    ids=["none", "wrong", "garbled-basic", "wrong-password"],
)
def test_it_answers_401_with_the_basic_challenge_collectds_curl_needs(client, headers):
    response = post(client, body(value_list()), headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic realm=")
    assert Sample.objects.count() == 0


def test_the_body_of_an_unauthenticated_request_is_never_read(client):
    for raw in (b"\xff not json", body(value_list()), b"[" * 100_000):
        assert post(client, raw, {}).status_code == 401
    assert post(client, b"{}", {}, URL + "?store_rates=maybe").status_code == 401
    assert Server.objects.count() == 0


@pytest.mark.parametrize(
    "headers",
    [
        lambda token: basic("collectd", token),  # User/Password
        lambda token: bearer(token),  # Header "Authorization: Bearer ..."
        lambda token: {"HTTP_AUTHORIZATION": f"Token {token}"},
    ],
    ids=["basic", "bearer", "token"],
)
def test_it_accepts_the_token_as_collectd_can_send_it(client, headers):
    response = post(client, body(value_list()), headers(make_token()))
    assert response.status_code == 204
    assert series("load1") == {(): [0.5]}


def test_it_answers_400_naming_the_first_bad_value_list_and_commits_the_others(client):
    t = now() - 1.5
    response = post(
        client,
        body(value_list(t), value_list(t, values=["x", 1, 2]), value_list(t - 10), "junk"),
        bearer(make_token()),
    )
    assert response.status_code == 400
    answer = response.json()
    assert answer["error"] == "partial write: value list 1: values[0] must be a number or null"
    assert answer["errors"][1] == "value list 3: must be an object"
    # Written counts the canonical load1, load5 and load15 too.
    assert (answer["written"], answer["rejected"]) == (12, 4)
    assert len(series("load5")[()]) == 2


def test_nulls_are_not_an_error(client):
    response = post(client, body(value_list(values=[None, None, 1.5])), bearer(make_token()))
    assert response.status_code == 204
    assert series("load/load.longterm") == {(): [1.5]}


def test_a_token_bound_to_a_server_takes_only_its_host(client):
    token = make_token(make_server("db-1"))
    assert post(client, body(value_list()), bearer(token)).status_code == 403
    assert post(client, body(value_list(host="db-1")), bearer(token)).status_code == 204


def test_an_unknown_store_rates_value_is_a_400(client):
    response = post(client, body(value_list()), bearer(make_token()), URL + "?store_rates=maybe")
    assert response.status_code == 400
    assert response.json()["error"] == "store_rates must be true or false"


def test_it_answers_405_to_get(client):
    assert client.get(URL).status_code == 405


def test_it_answers_413_to_a_body_over_the_limit(client, settings):
    settings.INGEST_MAX_BODY_BYTES = 4096
    response = post(client, body(*[value_list() for _ in range(40)]), bearer(make_token()))
    assert response.status_code == 413
    assert Sample.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_it_answers_503_with_retry_after_while_the_database_is_locked(client, settings):
    token = make_token(make_server("web-1"))
    with ingest_blocked_by_a_lock(settings):
        response = post(client, body(value_list()), bearer(token))
    assert response.status_code == 503
    assert response["Retry-After"] == str(settings.INGEST_RETRY_AFTER_SECONDS)


def _hostile() -> list[tuple[str, bytes, dict]]:
    """(name, body, extra request arguments): each must get a 4xx with a message.

    Bodies made by `with_good` start with a valid value list, which must be kept.
    """
    t = now() - 1.5
    good = value_list(t)
    huge = "x" * 1_000_000

    def with_good(*bad) -> bytes:
        return body(good, *bad)

    tiny = {"values": [None], "dstypes": ["gauge"], "dsnames": ["value"], "time": t,
            "host": "h", "plugin": "p", "type": "t"}  # fmt: skip
    many = [tiny] * 100_000
    cases = [
        ("empty", b"", {}),
        ("truncated", body(good)[:-7], {}),
        ("object", b'{"values": [1]}', {}),
        ("string", b'"collectd"', {}),
        ("bad-escape", b'[{"host": "\\x41"}]', {}),
        ("bare-nan", b'[{"values": [NaN]}]', {}),
        ("bare-infinity", b'[{"values": [Infinity]}]', {}),
        ("huge-number", b'[{"values": [1e999]}]', {}),
        ("nesting-bomb", b"[" * 100_000 + b"]" * 100_000, {}),
        ("invalid-utf8-outside-strings", b"[\xff]", {}),
        ("gzip-bomb", gzipped(b"[" + b" " * 70_000_000 + b"]"), {"HTTP_CONTENT_ENCODING": "gzip"}),
        ("broken-gzip", b"\x1f\x8bnot gzip", {"HTTP_CONTENT_ENCODING": "gzip"}),
        ("brotli", b"[]", {"HTTP_CONTENT_ENCODING": "br"}),
        ("not-an-object", with_good(42), {}),
        ("no-values", with_good(good | {"values": None}), {}),
        ("values-not-list", with_good(good | {"values": "1"}), {}),
        ("length-mismatch", with_good(good | {"dsnames": ["a"]}), {}),
        ("bool-value", with_good(good | {"values": [True, 1, 1]}), {}),
        ("string-value", with_good(good | {"values": ["1", 1, 1]}), {}),
        ("unknown-dstype", with_good(good | {"dstypes": ["float"] * 3}), {}),
        (
            "negative-counter",
            with_good(good | {"dstypes": ["counter"] * 3, "values": [-1] * 3}),
            {},
        ),
        ("time-in-ms", with_good(good | {"time": t * 1000}), {}),
        ("time-far-past", with_good(good | {"time": 86400.0}), {}),
        ("time-far-future", with_good(good | {"time": t + 10 * 365 * 86400}), {}),
        ("time-string", with_good(good | {"time": "now"}), {}),
        (
            "zero-interval-absolute",
            with_good(good | {"dstypes": ["absolute"] * 3, "interval": 0}),
            {},
        ),
        ("megabyte-host", with_good(good | {"host": huge}), {}),
        ("megabyte-plugin", with_good(good | {"plugin": huge}), {}),
        ("megabyte-type-instance", with_good(good | {"type_instance": huge}), {}),
        ("megabyte-plugin-instance", with_good(good | {"plugin_instance": huge}), {}),
        ("megabyte-dsname", with_good(good | {"dsnames": [huge, "b", "c"]}), {}),
        ("host-with-space", with_good(good | {"host": "web 1"}), {}),
        ("host-list", with_good(good | {"host": ["web-1"]}), {}),
        ("plugin-empty", with_good(good | {"plugin": ""}), {}),
        ("type-object", with_good(good | {"type": {"a": 1}}), {}),
        (
            "too-many-values",
            with_good(good | {"values": [1] * 100, "dstypes": ["gauge"] * 100}),
            {},
        ),
        ("name-over-200", with_good(good | {"plugin": "p" * 120, "type": "t" * 120}), {}),
        ("duplicate-fields", b'[{"values": [1], "values": "x"}]', {}),
        ("store-rates-bogus", body(good), {"QUERY_STRING": "store_rates=2"}),
        ("100k-value-lists-one-bad", body(good, *many, good | {"values": "x"}), {}),
    ]
    return cases


HOSTILE = _hostile()


@pytest.mark.parametrize(("name", "raw", "extra"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_input_gets_a_4xx_with_a_message_and_keeps_the_valid_part(
    client, settings, name, raw, extra
):
    settings.INGEST_MAX_BODY_BYTES = 32 * 1024 * 1024
    settings.INGEST_MAX_DECODED_BYTES = 64 * 1024 * 1024
    response = post(client, raw, bearer(make_token()), **extra)
    assert 400 <= response.status_code < 500, response.content[:300]
    assert response.json()["error"]
    if raw.startswith(b'[{"values":[0.5,0.25,0.125]') and raw.endswith(b"]") and not extra:
        # The valid value list in front of the bad one is committed.
        assert series("load1") == {(): [0.5]}


def test_the_hostile_corpus_has_at_least_30_cases():
    assert len(HOSTILE) >= 30
