"""scrape_due against a real HTTP exporter on 127.0.0.1 serving node_exporter pages."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection

from vigil.metrics.models import Sample
from vigil.scrape import celery_tasks, scrape, tasks
from vigil.scrape.models import ScrapeTarget
from vigil.servers.models import Server
from vigil.testing import free_port, make_server

FIXTURES = Path(__file__).parents[2] / "ingest" / "tests" / "fixtures" / "prometheus"
PAGE_A = (FIXTURES / "node_exporter_1.5.0_a.txt").read_bytes()
PAGE_B = (FIXTURES / "node_exporter_1.5.0_b.txt").read_bytes()
TEXT = "text/plain; version=0.0.4; charset=utf-8"


class Exporter(BaseHTTPRequestHandler):
    """Answers by path; /metrics serves page A then page B, like a live exporter."""

    protocol_version = "HTTP/1.1"
    hits: Counter = Counter()

    def log_message(self, *args) -> None:
        pass

    def answer(self, status: int, body: bytes, content_type: str = TEXT) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        path = self.path.split("?")[0]
        self.hits[path] += 1
        pages = {
            "/partial": b"node_load1 0.5\nnode_load5 oops\n",
            "/nan": b"node_load1 0.5\nnode_load5 NaN\n",
            "/html": b"<html><body>Hello</body></html>",
            "/big": b"node_load1 0.5\n" + b"# padding\n" * 500,
            "/many": b"".join(b"m%d 1\n" % i for i in range(20)),
            "/accept": self.headers.get("Accept", "").encode(),
        }
        if path == "/metrics":
            self.answer(200, PAGE_A if self.hits[path] % 2 else PAGE_B)
        elif path == "/slow":
            time.sleep(2)
            self.answer(200, b"node_load1 1\n")
        elif path == "/error":
            self.answer(500, b"collector failed")
        elif path == "/protobuf":
            self.answer(200, b"\x00\x01", "application/vnd.google.protobuf; proto=io.prometheus")
        elif path in pages:
            self.answer(200, pages[path])
        else:
            self.answer(404, b"not found")


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass


@pytest.fixture(scope="module")
def exporter():
    httpd = QuietServer(("127.0.0.1", free_port()), Exporter)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _loopback_allowed(settings):
    settings.SCRAPE_ALLOWED_NETWORKS = "127.0.0.1/32"
    settings.SCRAPE_ALLOW_PRIVATE = False
    Exporter.hits.clear()


def target(url: str, server: Server | None = None, **kw) -> ScrapeTarget:
    server = server or make_server("node-1")
    return ScrapeTarget.objects.create(server=server, url=url, **kw)


def values(metric: str) -> list[tuple[int, float]]:
    rows = Sample.objects.filter(series__metric=metric).order_by("ts")
    return list(rows.values_list("ts", "value"))


@pytest.mark.django_db
def test_a_due_target_is_scraped_into_native_and_canonical_series(exporter):
    t = target(exporter + "/metrics")
    before = time.time()
    # 362 gauges and 8 canonical gauges; the 145 counters give rates from the next scrape on.
    assert tasks.scrape_due() == {"scraped": 1, "failed": 0, "written": 370}
    t.refresh_from_db()
    assert t.last_error == "" and t.state == "ok"
    assert t.last_samples == 507 and 0 < t.last_duration < 5
    assert t.next_due > datetime.fromtimestamp(before, tz=UTC) + timedelta(seconds=14)
    ((ts, load),) = values("load1")
    assert values("node_load1") == [(ts, load)] and int(before) <= ts <= time.time()
    assert 0 <= values("memory_used_percent")[0][1] <= 100
    assert values("up") == []
    server = Server.objects.get()
    assert server.status == "up" and server.last_seen is not None


@pytest.mark.django_db
def test_it_asks_for_the_text_format(exporter):
    t = target(exporter + "/accept")
    tasks.scrape_due()
    t.refresh_from_db()
    assert t.last_error.startswith("unparsable answer")  # the Accept header came back
    assert Exporter.hits["/accept"] == 1


@pytest.mark.django_db
def test_the_second_scrape_gives_rates_and_cpu_usage(exporter):
    t = target(exporter + "/metrics", interval=1)
    now = time.time()
    scrape.scrape_due(now)
    time.sleep(1.05)  # rates are per whole second: the two scrapes need two stamps
    assert scrape.scrape_due(now + 1)["scraped"] == 1
    t.refresh_from_db()
    assert t.last_error == ""
    ((_, usage),) = values("cpu_usage_percent")
    assert 0 <= usage <= 100
    assert len(values("disk_read_bytes_per_second")) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "setting", "words"),
    [
        ("/error", {}, "the exporter answered HTTP 500"),
        ("/nowhere", {}, "the exporter answered HTTP 404"),
        ("/slow", {}, "no complete answer within 0.3 s"),
        ("/html", {}, "unparsable answer: no line could be read"),
        ("/protobuf", {}, "not the text format"),
        ("/big", {"SCRAPE_MAX_BYTES": 1000}, "the answer is larger than 1000 bytes"),
        ("/many", {"SCRAPE_MAX_SAMPLES": 10}, "20 samples are more than SCRAPE_MAX_SAMPLES"),
        ("/metrics", {"SCRAPE_ALLOWED_NETWORKS": ""}, "VIGIL_SCRAPE_ALLOWED_NETWORKS"),
    ],
)
def test_a_failed_scrape_records_why_and_writes_up_zero(exporter, settings, path, setting, words):
    for name, value in setting.items():
        setattr(settings, name, value)
    t = target(exporter + path, timeout=0.3)
    started = int(time.time())
    assert tasks.scrape_due()["failed"] == 1
    t.refresh_from_db()
    assert words in t.last_error and t.state == "failing"
    ((ts, up),) = values("up")
    assert up == 0.0 and started <= ts <= time.time()
    assert t.last_scrape == datetime.fromtimestamp(ts, tz=UTC)
    assert Sample.objects.exclude(series__metric="up").count() == 0
    assert Server.objects.get().last_seen is None  # a failure is no report


@pytest.mark.django_db
def test_a_refused_connection_is_a_failure():
    t = target(f"http://127.0.0.1:{free_port()}/metrics")
    tasks.scrape_due()
    t.refresh_from_db()
    assert t.last_error == "connection refused"
    assert [v for _, v in values("up")] == [0.0]


@pytest.mark.django_db
def test_a_partly_bad_page_keeps_its_good_lines_and_says_so(exporter):
    t = target(exporter + "/partial")
    assert tasks.scrape_due()["failed"] == 0
    t.refresh_from_db()
    assert t.state == "partial"
    assert t.last_error == "partial: 1 lines rejected; first line 2: value 'oops' is not a number"
    assert (t.last_samples, t.last_skipped) == (1, 1)
    assert [v for _, v in values("load1")] == [0.5]
    assert values("up") == []


@pytest.mark.django_db
def test_nan_samples_are_skipped_and_counted_without_an_error(exporter):
    t = target(exporter + "/nan")
    tasks.scrape_due()
    t.refresh_from_db()
    assert (t.last_error, t.last_samples, t.last_skipped) == ("", 1, 1)


@pytest.mark.django_db
def test_disabled_and_not_yet_due_targets_are_left_alone(exporter):
    server = make_server("node-1")
    future = datetime.now(tz=UTC) + timedelta(minutes=1)
    target(exporter + "/metrics", server, enabled=False)
    target(exporter + "/metrics?later", server, next_due=future)
    assert tasks.scrape_due() == {"scraped": 0, "failed": 0, "written": 0}
    assert Exporter.hits["/metrics"] == 0


@pytest.mark.django_db
def test_a_claimed_target_cannot_be_claimed_again_for_the_same_turn(exporter):
    t = target(exporter + "/metrics")
    now = time.time()
    seen_due = ScrapeTarget.objects.get().next_due
    assert [c.pk for c in scrape.claim_due(now, 10)] == [t.pk]
    assert scrape.claim_due(now, 10) == []
    # A worker that read the row before the claim loses the conditional update.
    assert ScrapeTarget.objects.filter(pk=t.pk, next_due=seen_due).update(next_due=None) == 0


@pytest.mark.django_db
def test_next_due_keeps_the_phase_and_skips_missed_turns():
    t = target("http://127.0.0.1:1/metrics", interval=10)
    due = datetime(2026, 1, 1, tzinfo=UTC)
    ScrapeTarget.objects.update(next_due=due)
    scrape.claim_due(due.timestamp() + 3, 10)
    t.refresh_from_db()
    assert t.next_due == due + timedelta(seconds=10)
    scrape.claim_due(due.timestamp() + 100, 10)
    t.refresh_from_db()
    assert t.next_due == due + timedelta(seconds=110)


@pytest.mark.django_db(transaction=True)
def test_two_workers_running_at_once_scrape_each_target_once(exporter):
    server = make_server("node-1")
    for i in range(6):
        target(f"{exporter}/nan?{i}", server)
    results = []

    def worker():
        try:
            results.append(scrape.scrape_due())
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(r["scraped"] for r in results) == 6
    assert Exporter.hits["/nan"] == 6
    assert ScrapeTarget.objects.filter(last_scrape__isnull=True).count() == 0


@pytest.mark.django_db
def test_the_celery_task_runs_the_same_function(exporter):
    target(exporter + "/nan")
    assert celery_tasks.scrape_due.name == "vigil.scrape.scrape_due"
    assert celery_tasks.scrape_due.run(time.time())["scraped"] == 1
