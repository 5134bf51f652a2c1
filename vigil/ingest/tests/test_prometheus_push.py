"""POST /api/v1/ingest/prometheus: the text format pushed by curl scripts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from vigil.metrics.models import Sample, Series
from vigil.servers.models import Server
from vigil.testing import basic, bearer, gzipped, make_server, make_token

URL = "/api/v1/ingest/prometheus"
FIXTURES = Path(__file__).parent / "fixtures" / "prometheus"
pytestmark = pytest.mark.django_db


def post(client, body: bytes, headers: dict, query: str = "", **extra):
    return client.post(
        URL + query, data=body, content_type="text/plain; version=0.0.4", **headers, **extra
    )


def stored(metric: str) -> list[float]:
    return list(Sample.objects.filter(series__metric=metric).values_list("value", flat=True))


def test_a_bound_token_writes_a_node_exporter_page_for_its_server(client):
    server = make_server("node-1")
    body = (FIXTURES / "node_exporter_1.5.0_a.txt").read_bytes()
    response = post(client, body, bearer(make_token(server)))
    assert response.status_code == 204, response.content
    assert set(Series.objects.values_list("server__name", flat=True)) == {"node-1"}
    assert stored("node_load1") == stored("load1") != []
    assert 0 <= stored("memory_used_percent")[0] <= 100
    assert 0 <= stored("filesystem_used_percent")[0] <= 100
    server.refresh_from_db()
    assert server.status == "up" and server.last_seen is not None


def test_a_registering_token_names_the_server_with_the_host_parameter(client):
    response = post(client, b"node_load1 0.5\n", bearer(make_token()), "?host=web-9")
    assert response.status_code == 204
    assert Series.objects.get(metric="load1").server.name == "web-9"


def test_a_registering_token_without_host_is_told_to_give_one(client):
    response = post(client, b"node_load1 0.5\n", bearer(make_token()))
    assert response.status_code == 400
    assert "host name is required" in response.json()["error"]
    assert Sample.objects.count() == 0


def test_a_bound_token_cannot_write_for_another_host(client):
    token = make_token(make_server("db-1"))
    response = post(client, b"node_load1 0.5\n", bearer(token), "?host=web-1")
    assert response.status_code == 403
    assert Sample.objects.count() == 0


def test_a_bound_token_may_name_its_own_host(client):
    token = make_token(make_server("db-1"))
    assert post(client, b"node_load1 0.5\n", bearer(token), "?host=db-1").status_code == 204


def test_counters_pushed_twice_become_rates(client):
    token = make_token(make_server("db-1"))
    t = int(time.time()) - 60
    for i, value in enumerate((100, 400)):
        body = f"# TYPE c counter\nc {value} {(t + 10 * i) * 1000}\n".encode()
        assert post(client, body, bearer(token)).status_code == 204
    assert stored("c") == [30.0]


def test_nan_samples_are_skipped_and_the_answer_says_how_many(client):
    response = post(client, b"ok 1\nx NaN\ny +Inf\n", bearer(make_token()), "?host=web-1")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == (
        "partial write: line 2: 2 NaN/Inf samples skipped (Vigil stores finite values only)"
    )
    assert (body["written"], body["rejected"]) == (1, 2)
    assert stored("ok") == [1.0]


def test_it_accepts_a_gzip_body(client):
    token = make_token(make_server("db-1"))
    response = post(client, gzipped(b"ok 1\n"), bearer(token), HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 204
    assert stored("ok") == [1.0]


def test_it_accepts_basic_auth_with_the_token_as_password(client):
    token = make_token(make_server("db-1"))
    assert post(client, b"ok 1\n", basic("curl", token)).status_code == 204


@pytest.mark.parametrize(
    "headers",
    [{}, {"HTTP_AUTHORIZATION": "Bearer vgi_wrong"}, {"HTTP_AUTHORIZATION": "Basic !!!"}],
    ids=["none", "wrong", "garbled"],
)
def test_it_answers_401_without_a_valid_token(client, headers):
    response = post(client, b"ok 1\n", headers, "?host=web-1")
    assert response.status_code == 401
    assert Sample.objects.count() == 0 and Server.objects.count() == 0


def test_it_answers_401_before_reading_a_hostile_body(client):
    response = post(client, b"\xff" * 1000, {}, "?host=bad host")
    assert response.status_code == 401


def test_it_answers_405_to_get(client):
    assert client.get(URL).status_code == 405


NOW_MS = int(time.time()) * 1000
# (id, body, status, words of the message, whether the valid "ok 1" line is kept)
HOSTILE = [
    ("truncated-labels", b'ok 1\nbad{x="ab', 400, "'{' without a closing '}'", True),
    ("truncated-value", b'ok 1\nbad{x="1"}', 400, "bad has no value", True),
    ("truncated-mid-name", b"ok 1\nba", 400, "ba has no value", True),
    ("bad-escape", b'ok 1\nbad{x="\\t"} 1', 400, "invalid escape sequence", True),
    ("escape-at-end", b'ok 1\nbad{x="a\\"} 1', 400, "cannot read the labels", True),
    ("nan", b"ok 1\nbad NaN", 400, "NaN/Inf samples skipped", True),
    ("plus-inf", b"ok 1\nbad +Inf", 400, "NaN/Inf samples skipped", True),
    ("minus-inf", b"ok 1\nbad -Inf", 400, "NaN/Inf samples skipped", True),
    ("huge-number", b"ok 1\nbad 1e999", 400, "out of range", True),
    ("huge-digits", b"ok 1\nbad " + b"9" * 5000, 400, "out of range", True),
    ("huge-timestamp", b"ok 1\nbad 1 " + b"9" * 40, 400, "in the future", True),
    ("seconds-timestamp", b"ok 1\nbad 1 1790000000", 400, "before 2000-01-01", True),
    ("ancient-timestamp", b"ok 1\nbad 1 1000", 400, "before 2000-01-01", True),
    ("future-timestamp", f"ok 1\nbad 1 {NOW_MS + 86_400_000}".encode(), 400, "future", True),
    ("float-timestamp", b"ok 1\nbad 1 17e11", 400, "not an integer number", True),
    ("mb-label-value", b'ok 1\nbad{x="' + b"v" * 2**20 + b'"} 1', 400, "longer than 200", True),
    ("mb-metric-name", b"ok 1\n" + b"a" * 2**20 + b" 1", 400, "longer than 200", True),
    (
        "many-labels",
        b"ok 1\nbad{" + b",".join(b'l%d="v"' % i for i in range(40)) + b"} 1",
        400,
        "at most 32 labels",
        True,
    ),  # fmt: skip
    ("dup-label", b'ok 1\nbad{x="1",x="2"} 1', 400, "appears twice", True),
    ("dup-sample", b"ok 1\nok 2", 400, "second sample of ok", True),
    ("dup-type", b"# TYPE ok gauge\n# TYPE ok gauge\nok 1", 400, "second TYPE", True),
    ("type-after-sample", b"ok 1\n# TYPE ok counter", 400, "comes after its samples", True),
    ("wrong-type", b"# TYPE ok bogus\nok 1", 400, "unknown type 'bogus'", True),
    ("bad-help-escape", b"# HELP ok a \\q\nok 1", 400, "invalid escape sequence in HELP", True),
    ("bucket-without-le", b"# TYPE h histogram\nh_bucket 1\nok 1", 400, "needs a 'le'", True),
    ("summary-no-quantile", b"# TYPE s summary\ns 1\nok 1", 400, "needs a 'quantile'", True),
    ("dotted-name", b"ok 1\nbad.name 1", 400, "is not a metric name", True),
    ("bad-label-name", b'ok 1\nbad{1x="1"} 1', 400, "cannot read the labels", True),
    ("nul-bytes", b"ok 1\nbad\x00 1", 400, "is not a metric name", True),
    ("invalid-utf8", b'ok 1\nbad{x="\xc3\x28"} 1', 400, "not valid UTF-8", True),
    ("unicode-digits", "ok 1\nbad ١".encode(), 400, "is not a number", True),
    ("underscored-number", b"ok 1\nbad 1_0", 400, "is not a number", True),
    ("extra-tokens", b"ok 1\nbad 1 1790000000000 x", 400, "after the timestamp", True),
    ("nesting-bomb", b"ok 1\nbad" + b"{" * 100_000 + b"} 1", 400, "cannot read the labels", True),
    (
        "blank-bomb",
        b'ok 1\nbad{x="1"' + b" " * 2**20 + b"y} 1",
        400,
        "cannot read the labels",
        True,
    ),
    ("brace-bomb", b"ok 1\n" + b"}" * 100_000, 400, "is not a metric name", True),
    ("100k-bad-lines", b"ok 1\n" + b"bad\n" * 100_000, 400, "bad has no value", True),
    ("empty", b"", 400, "the body is empty", False),
    ("only-blank", b"\n \n\t\n", 400, "the body is empty", False),
    ("json", b'{"series": [{"metric": "m"}]}', 400, "no line could be read", False),
    ("html", b"<html><body>502 Bad Gateway</body></html>", 400, "no line could be read", False),
    ("binary", bytes(range(256)) * 10, 400, "no line could be read", False),
]


@pytest.mark.parametrize(
    ("body", "status", "words", "kept"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_hostile_input_gets_a_4xx_with_a_message_and_keeps_the_valid_part(
    client, body, status, words, kept
):
    token = make_token(make_server("db-1"))
    response = post(client, body, bearer(token))
    assert response.status_code == status, response.content[:300]
    assert words in response.json()["error"]
    assert stored("ok") == ([1.0] if kept else [])
    assert not Series.objects.exclude(metric__in=["ok", "h_bucket", "s"]).exists()


def test_a_gzip_bomb_gets_413(client, settings):
    settings.INGEST_MAX_DECODED_BYTES = 100_000
    token = make_token(make_server("db-1"))
    bomb = gzipped(b"ok 1\n" + b"#" * 10_000_000)
    response = post(client, bomb, bearer(token), HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413
    assert "decompressed" in response.json()["error"]


def test_a_broken_gzip_body_gets_400(client):
    token = make_token(make_server("db-1"))
    response = post(client, b"ok 1\n", bearer(token), HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400


def test_a_body_over_the_limit_gets_413(client, settings):
    settings.INGEST_MAX_BODY_BYTES = 1000
    token = make_token(make_server("db-1"))
    response = post(client, b"ok 1\n" * 1000, bearer(token))
    assert response.status_code == 413
    assert Sample.objects.count() == 0


@pytest.mark.parametrize("host", ["bad host", "x" * 300, "-dash", "a/b"])
def test_an_invalid_host_parameter_gets_400(client, host):
    response = post(client, b"ok 1\n", bearer(make_token()), f"?host={host}")
    assert response.status_code == 400
    assert "host query parameter" in response.json()["error"]
    assert Server.objects.count() == 0
